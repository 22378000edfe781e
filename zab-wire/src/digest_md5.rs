//! The DIGEST-MD5 SASL mechanism (RFC 2831), both sides, as the JDK's
//! SASL client and server speak it to and from ZooKeeper: for clients on
//! the client port ([`CLIENT_PORT`]) and between servers
//! ([`QUORUM`], `quorum.auth.*`).
//!
//! Plain state machines: a token in, a token out. Callers move the tokens
//! (in a jute `SaslRequest` or a quorum link's auth packets) and draw the
//! nonces ([`nonce`]). Only `qop=auth` is offered and accepted, as
//! ZooKeeper uses it: authentication, no integrity or confidentiality
//! layer.

use std::collections::HashMap;
use std::fmt::Write as _;

use md5::{Digest as _, Md5};

/// Who the exchange authenticates to: the JDK server offers its server name
/// as the realm, and the client names `protocol/serverName` as digest-uri.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    pub realm: &'static str,
    pub digest_uri: &'static str,
}

/// ZooKeeper's client port: protocol `zookeeper`, server name
/// `zk-sasl-md5` (`ZooKeeperSaslServer`).
pub const CLIENT_PORT: Service = Service {
    realm: "zk-sasl-md5",
    digest_uri: "zookeeper/zk-sasl-md5",
};

/// ZooKeeper's quorum links: protocol `zookeeper-quorum`, server name
/// `zk-quorum-sasl-md5` (`QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME` and
/// `QUORUM_SERVER_SASL_DIGEST`).
pub const QUORUM: Service = Service {
    realm: "zk-quorum-sasl-md5",
    digest_uri: "zookeeper-quorum/zk-quorum-sasl-md5",
};

/// 16 random bytes from the OS, hex: a server's nonce or a client's
/// cnonce (the JDK draws both at random too).
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // The OS refused randomness: a value from the clock still differs
        // per exchange, if predictably.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    hex(&bytes)
}

/// One exchange, server side.
#[derive(Debug)]
pub enum ServerExchange {
    /// Before the client's first (empty) token.
    Start { service: Service, nonce: String },
    /// The challenge is out; the client's response is awaited.
    Challenged { service: Service, nonce: String },
    /// Authenticated, or failed.
    Done,
}

/// What a step of the server's exchange yields.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerStep {
    /// The token to send back.
    pub token: Vec<u8>,
    /// Set when the exchange completed: the authenticated user.
    pub authenticated: Option<String>,
    /// The identity the client asked to act as, if it named one. Whether
    /// that is allowed is the caller's rule: ZooKeeper's client port
    /// ignores it, its quorum links refuse one that is not the user.
    pub authzid: Option<String>,
}

impl ServerExchange {
    /// A new exchange for `service`; `nonce` must be unpredictable.
    pub fn new(service: Service, nonce: String) -> ServerExchange {
        ServerExchange::Start { service, nonce }
    }

    /// Evaluates the client's token (the JDK `SaslServer.evaluateResponse`)
    /// against `users` (name → password). An error ends the exchange: the
    /// client failed to authenticate.
    pub fn step(
        &mut self,
        token: &[u8],
        users: &HashMap<String, String>,
    ) -> Result<ServerStep, String> {
        match std::mem::replace(self, ServerExchange::Done) {
            ServerExchange::Start { service, nonce } => {
                // The first token is empty in DIGEST-MD5; the server speaks
                // first (RFC 2831 §2.1.1). The JDK sends these directives.
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                    service.realm
                );
                *self = ServerExchange::Challenged { service, nonce };
                Ok(ServerStep {
                    token: challenge.into_bytes(),
                    authenticated: None,
                    authzid: None,
                })
            }
            ServerExchange::Challenged { service, nonce } => {
                let response = std::str::from_utf8(token).map_err(|_| "response is not UTF-8")?;
                verify(response, &nonce, service, users)
            }
            ServerExchange::Done => Err("DIGEST-MD5 authentication already complete".into()),
        }
    }
}

/// RFC 2831 §2.1.2: checks the client's digest-response and computes the
/// `rspauth` that proves the server knows the password too.
fn verify(
    response: &str,
    nonce: &str,
    service: Service,
    users: &HashMap<String, String>,
) -> Result<ServerStep, String> {
    let d = directives(response)?;
    let get = |k: &str| d.get(k).map(String::as_str);
    let username = get("username").ok_or("no username")?;
    let realm = get("realm").unwrap_or("");
    if get("nonce") != Some(nonce) {
        return Err("nonce mismatch".into());
    }
    let cnonce = get("cnonce").ok_or("no cnonce")?;
    let nc = get("nc").ok_or("no nc")?;
    if nc != "00000001" {
        return Err(format!("unexpected nonce count {nc}"));
    }
    let qop = get("qop").unwrap_or("auth");
    if qop != "auth" {
        return Err(format!("qop {qop} not offered"));
    }
    let uri = get("digest-uri").ok_or("no digest-uri")?;
    if uri != service.digest_uri {
        return Err(format!(
            "digest-uri {uri:?} is not {:?}",
            service.digest_uri
        ));
    }
    if get("charset").is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
        return Err("charset must be utf-8".into());
    }
    let client_digest = get("response").ok_or("no response")?;
    let password = users
        .get(username)
        .ok_or_else(|| format!("user {username:?} not found"))?;
    let digest = Digest {
        username,
        realm,
        password,
        nonce,
        cnonce,
        nc,
        qop,
        authzid: get("authzid"),
    };
    let expected = digest.response(&format!("AUTHENTICATE:{uri}"));
    if !expected.eq_ignore_ascii_case(client_digest) {
        return Err(format!("wrong password for {username:?}"));
    }
    let rspauth = digest.response(&format!(":{uri}"));
    Ok(ServerStep {
        token: format!("rspauth={rspauth}").into_bytes(),
        authenticated: Some(username.to_owned()),
        authzid: get("authzid").map(str::to_owned),
    })
}

/// One exchange, client side: the JDK `SaslClient` for DIGEST-MD5 with a
/// user name and password (ZooKeeper's `DigestLoginModule` credentials).
#[derive(Debug)]
pub struct ClientExchange {
    service: Service,
    user: String,
    password: String,
    cnonce: String,
    state: ClientState,
}

#[derive(Debug, PartialEq, Eq)]
enum ClientState {
    /// The server's challenge is awaited.
    Start,
    /// The response is out; the server's rspauth is awaited, expected to
    /// be this value.
    Responded {
        rspauth: String,
    },
    Done,
    /// A step failed: the exchange is over, unauthenticated.
    Failed,
}

impl ClientExchange {
    /// A new exchange as `user`; `cnonce` must be unpredictable.
    pub fn new(service: Service, user: &str, password: &str, cnonce: String) -> ClientExchange {
        ClientExchange {
            service,
            user: user.to_owned(),
            password: password.to_owned(),
            cnonce,
            state: ClientState::Start,
        }
    }

    /// Whether the server has proved it knows the password too.
    pub fn is_complete(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Evaluates the server's token (`SaslClient.evaluateChallenge`): the
    /// challenge gives the response to send, the final `rspauth` gives
    /// `None` and completes the exchange. An error ends it.
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let text = std::str::from_utf8(token).map_err(|_| "server token is not UTF-8")?;
        match std::mem::replace(&mut self.state, ClientState::Failed) {
            ClientState::Start => {
                let d = directives(text)?;
                let nonce = d.get("nonce").ok_or("challenge without a nonce")?;
                let realm = d.get("realm").map_or("", String::as_str);
                if !d
                    .get("qop")
                    .is_none_or(|q| q.split(',').any(|q| q.trim() == "auth"))
                {
                    return Err("the server does not offer qop=auth".into());
                }
                let uri = self.service.digest_uri;
                let digest = Digest {
                    username: &self.user,
                    realm,
                    password: &self.password,
                    nonce,
                    cnonce: &self.cnonce,
                    nc: "00000001",
                    qop: "auth",
                    authzid: None,
                };
                let response = digest.response(&format!("AUTHENTICATE:{uri}"));
                let rspauth = digest.response(&format!(":{uri}"));
                self.state = ClientState::Responded { rspauth };
                Ok(Some(
                    format!(
                        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",\
                         nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,\
                         response={response},qop=auth",
                        user = self.user,
                        cnonce = self.cnonce,
                    )
                    .into_bytes(),
                ))
            }
            ClientState::Responded { rspauth } => {
                let d = directives(text)?;
                match d.get("rspauth") {
                    Some(got) if got.eq_ignore_ascii_case(&rspauth) => {
                        self.state = ClientState::Done;
                        Ok(None)
                    }
                    Some(_) => {
                        Err("the server's rspauth is wrong: it does not know the password".into())
                    }
                    None => Err("no rspauth from the server".into()),
                }
            }
            ClientState::Done | ClientState::Failed => {
                Err("DIGEST-MD5 authentication already over".into())
            }
        }
    }
}

/// What both sides of one exchange put into its digests.
struct Digest<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: &'a str,
    qop: &'a str,
    authzid: Option<&'a str>,
}

impl Digest<'_> {
    /// `HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))))` with md5-sess:
    /// the client's response for A2 = `AUTHENTICATE:uri`, the server's
    /// rspauth for A2 = `:uri`.
    fn response(&self, a2: &str) -> String {
        let Digest {
            username,
            realm,
            password,
            nonce,
            cnonce,
            nc,
            qop,
            authzid,
        } = self;
        let secret = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
        let mut a1 = secret.to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        if let Some(z) = authzid {
            a1.extend_from_slice(format!(":{z}").as_bytes());
        }
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(a2.as_bytes()));
        hex(&Md5::digest(
            format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `key=value` or `key="value"` pairs separated by commas (RFC 2831 §7.1).
fn directives(s: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("directive {key:?} has no value"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("unclosed quote".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 §4's example exchange: the response the client sends and
    /// the rspauth the server answers.
    #[test]
    fn the_rfc_example_computes() {
        let digest = Digest {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            authzid: None,
        };
        let value = |a2: &str| digest.response(a2);
        assert_eq!(
            value("AUTHENTICATE:imap/elwood.innosoft.com"),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(
            value(":imap/elwood.innosoft.com"),
            "ea40f60335c427b5527b84dbabcdfffd"
        );
    }

    fn users() -> HashMap<String, String> {
        [("bob".to_owned(), "bobsecret".to_owned())].into()
    }

    /// The client's half against the server's, both ways proved.
    fn run(service: Service, user: &str, password: &str) -> Result<String, String> {
        let mut server = ServerExchange::new(service, nonce());
        let mut client = ClientExchange::new(service, user, password, nonce());
        let challenge = server.step(b"", &users())?;
        assert_eq!(challenge.authenticated, None);
        let response = client.step(&challenge.token)?.expect("a response");
        let done = server.step(&response, &users())?;
        assert_eq!(client.step(&done.token)?, None);
        assert!(client.is_complete());
        Ok(done.authenticated.expect("authenticated"))
    }

    #[test]
    fn a_known_user_with_the_right_password_is_authenticated_both_ways() {
        for service in [CLIENT_PORT, QUORUM] {
            assert_eq!(run(service, "bob", "bobsecret").as_deref(), Ok("bob"));
        }
    }

    #[test]
    fn the_server_challenges_as_the_jdk_does() {
        let mut s = ServerExchange::new(CLIENT_PORT, "n0nce".into());
        assert_eq!(
            s.step(b"", &users()).unwrap().token,
            b"realm=\"zk-sasl-md5\",nonce=\"n0nce\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
        );
        let mut q = ServerExchange::new(QUORUM, "n0nce".into());
        assert!(String::from_utf8(q.step(b"", &users()).unwrap().token)
            .unwrap()
            .starts_with("realm=\"zk-quorum-sasl-md5\""));
    }

    #[test]
    fn wrong_passwords_and_unknown_users_fail() {
        for (user, password) in [("bob", "wrong"), ("eve", "bobsecret")] {
            let err = run(QUORUM, user, password).unwrap_err();
            assert!(err.contains(user), "{err}");
        }
        let mut s = ServerExchange::new(QUORUM, "n0nce".into());
        s.step(b"", &users()).unwrap();
        assert!(s.step(b"garbage", &users()).is_err());
        assert!(s.step(b"", &users()).is_err(), "no step after the end");
    }

    /// A response made for the client port is refused on a quorum link:
    /// the digest-uri names the service.
    #[test]
    fn a_response_for_another_service_fails() {
        let mut server = ServerExchange::new(QUORUM, nonce());
        let mut client = ClientExchange::new(CLIENT_PORT, "bob", "bobsecret", nonce());
        let challenge = server.step(b"", &users()).unwrap();
        let response = client.step(&challenge.token).unwrap().unwrap();
        let err = server.step(&response, &users()).unwrap_err();
        assert!(err.contains("digest-uri"), "{err}");
    }

    /// A server that does not know the password cannot fake the rspauth:
    /// the client refuses it.
    #[test]
    fn a_server_without_the_password_is_refused_by_the_client() {
        let mut client = ClientExchange::new(QUORUM, "bob", "bobsecret", nonce());
        let mut server = ServerExchange::new(QUORUM, nonce());
        let challenge = server.step(b"", &users()).unwrap();
        client.step(&challenge.token).unwrap();
        let err = client
            .step(b"rspauth=00000000000000000000000000000000")
            .unwrap_err();
        assert!(err.contains("rspauth"), "{err}");
        assert!(!client.is_complete());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }

    proptest::proptest! {
        /// Any bytes as either side's token are an answer or an error,
        /// never a panic.
        #[test]
        fn arbitrary_tokens_never_panic(
            token in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut s = ServerExchange::new(QUORUM, "n".into());
            let _ = s.step(b"", &users());
            let _ = s.step(&token, &users());
            let mut c = ClientExchange::new(QUORUM, "bob", "x", "c".into());
            let _ = c.step(&token);
            let _ = c.step(&token);
            let _ = directives(&String::from_utf8_lossy(&token));
        }
    }
}
