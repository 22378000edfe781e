//! SASL for clients: the DIGEST-MD5 mechanism (RFC 2831) with users from
//! a JAAS file, as ZooKeeper's `DigestLoginModule` and JDK SASL server give
//! it (reference D.9: a success adds `sasl:<user>`).
//!
//! This module owns the JAAS `Server` section's users and one connection's
//! DIGEST-MD5 exchange as a plain state machine: a token in, a token (and,
//! at the end, the authenticated user) out. The pipeline sends the tokens
//! and adds the identities. Kerberos (GSSAPI) is not here.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use md5::{Digest as _, Md5};

/// ZooKeeper's SASL server name for DIGEST-MD5, which the JDK server also
/// offers as its realm; clients use `zookeeper/zk-sasl-md5` as digest-uri.
const SERVER_NAME: &str = "zk-sasl-md5";
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// Server-wide SASL settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// `user_<name>="<password>"` options of the JAAS section.
    pub users: HashMap<String, String>,
    /// `zookeeper.superUser` (and `zookeeper.superUser.*`): authenticated
    /// users that are also `super`.
    pub super_users: Vec<String>,
}

/// Why a JAAS file gives no users.
#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no section {section:?}")]
    NoSection { path: String, section: String },
    #[error("{path}: section {section:?}: {what}")]
    Syntax {
        path: String,
        section: String,
        what: String,
    },
}

/// Reads the users of JAAS section `section` (ZooKeeper's
/// `zookeeper.sasl.serverconfig`, default `Server`) from `path`.
pub fn load_jaas(path: &Path, section: &str) -> Result<HashMap<String, String>, JaasError> {
    let text = std::fs::read_to_string(path).map_err(|source| JaasError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_jaas(&text, section).map_err(|e| match e {
        JaasParse::NoSection => JaasError::NoSection {
            path: path.display().to_string(),
            section: section.to_owned(),
        },
        JaasParse::Syntax(what) => JaasError::Syntax {
            path: path.display().to_string(),
            section: section.to_owned(),
            what,
        },
    })
}

#[derive(Debug, PartialEq)]
enum JaasParse {
    NoSection,
    Syntax(String),
}

/// The `user_*` options of one section of a JAAS login configuration:
/// `Name { module flag key="value" ...; ... };`, with `//` and `/* */`
/// comments.
fn parse_jaas(text: &str, section: &str) -> Result<HashMap<String, String>, JaasParse> {
    let tokens = jaas_tokens(text).map_err(JaasParse::Syntax)?;
    let mut i = 0;
    while i < tokens.len() {
        let name = &tokens[i];
        if tokens.get(i + 1).map(String::as_str) != Some("{") {
            return Err(JaasParse::Syntax(format!("expected `{{` after {name:?}")));
        }
        let end = tokens[i..]
            .iter()
            .position(|t| t == "}")
            .map(|p| p + i)
            .ok_or_else(|| JaasParse::Syntax("unclosed section".into()))?;
        if name == section {
            let mut users = HashMap::new();
            let body = &tokens[i + 2..end];
            // Each entry: module, flag, key = value ..., `;`.
            let mut j = 0;
            while j < body.len() {
                j += 2;
                while j < body.len() && body[j] != ";" {
                    let (Some(key), Some("="), Some(value)) = (
                        body.get(j),
                        body.get(j + 1).map(String::as_str),
                        body.get(j + 2),
                    ) else {
                        return Err(JaasParse::Syntax("expected key=\"value\"".into()));
                    };
                    if let Some(user) = key.strip_prefix("user_") {
                        users.insert(user.to_owned(), value.clone());
                    }
                    j += 3;
                }
                j += 1;
            }
            return Ok(users);
        }
        // `};` closes a section.
        i = end + 1;
        if tokens.get(i).map(String::as_str) == Some(";") {
            i += 1;
        }
    }
    Err(JaasParse::NoSection)
}

/// Words, quoted strings (unquoted) and the punctuation `{ } ; =`.
fn jaas_tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some('/') if last == '*' => break,
                        Some(c) => last = c,
                        None => return Err("unclosed comment".into()),
                    }
                }
            }
            '{' | '}' | ';' | '=' => out.push(c.to_string()),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unclosed quote".into()),
                    }
                }
                out.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};=\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// One connection's DIGEST-MD5 exchange, server side.
#[derive(Debug)]
pub enum DigestMd5 {
    /// Before the client's first (empty) token.
    Start { nonce: String },
    /// The challenge is out; the client's response is awaited.
    Challenged { nonce: String },
    /// Authenticated.
    Done,
}

/// What a step of the exchange yields.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// The token to send back.
    pub token: Vec<u8>,
    /// Set when the exchange completed: the authorization id.
    pub authenticated: Option<String>,
}

impl DigestMd5 {
    /// A new exchange; `nonce` must be unpredictable (the pipeline draws it
    /// from the OS).
    pub fn new(nonce: String) -> DigestMd5 {
        DigestMd5::Start { nonce }
    }

    /// Evaluates the client's token (the JDK `SaslServer.evaluateResponse`).
    /// An error ends the exchange: the client failed to authenticate.
    pub fn step(&mut self, token: &[u8], cfg: &SaslConfig) -> Result<Step, String> {
        match std::mem::replace(self, DigestMd5::Done) {
            DigestMd5::Start { nonce } => {
                // The first token is empty in DIGEST-MD5; the server speaks
                // first (RFC 2831 §2.1.1). The JDK sends these directives.
                let challenge = format!(
                    "realm=\"{SERVER_NAME}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
                );
                *self = DigestMd5::Challenged { nonce };
                Ok(Step {
                    token: challenge.into_bytes(),
                    authenticated: None,
                })
            }
            DigestMd5::Challenged { nonce } => {
                let response = std::str::from_utf8(token).map_err(|_| "response is not UTF-8")?;
                verify(response, &nonce, cfg)
            }
            DigestMd5::Done => Err("DIGEST-MD5 authentication already complete".into()),
        }
    }
}

/// RFC 2831 §2.1.2: checks the client's digest-response and computes the
/// `rspauth` that proves the server knows the password too.
fn verify(response: &str, nonce: &str, cfg: &SaslConfig) -> Result<Step, String> {
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
    if uri != DIGEST_URI {
        return Err(format!("digest-uri {uri:?} is not {DIGEST_URI:?}"));
    }
    if get("charset").is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
        return Err("charset must be utf-8".into());
    }
    let client_digest = get("response").ok_or("no response")?;
    let password = cfg
        .users
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
    // ZooKeeper's `SaslServerCallbackHandler` authorizes the authenticated
    // name itself (its Kerberos short name: the name, for a plain user).
    Ok(Step {
        token: format!("rspauth={rspauth}").into_bytes(),
        authenticated: Some(username.to_owned()),
    })
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

/// A DIGEST-MD5 client's answer to `challenge`, as the JDK client makes
/// it; for the pipeline's tests.
#[cfg(test)]
pub(crate) fn client_response(challenge: &[u8], user: &str, password: &str) -> Vec<u8> {
    let d = directives(std::str::from_utf8(challenge).expect("UTF-8")).expect("directives");
    let (realm, nonce) = (&d["realm"], &d["nonce"]);
    let response = Digest {
        username: user,
        realm,
        password,
        nonce,
        cnonce: "cnonce1",
        nc: "00000001",
        qop: "auth",
        authzid: None,
    }
    .response(&format!("AUTHENTICATE:{DIGEST_URI}"));
    format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
         cnonce=\"cnonce1\",digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={response},qop=auth"
    )
    .into_bytes()
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

    fn cfg() -> SaslConfig {
        SaslConfig {
            users: [("bob".to_owned(), "bobsecret".to_owned())].into(),
            super_users: Vec::new(),
        }
    }

    #[test]
    fn a_known_user_with_the_right_password_is_authenticated() {
        let mut s = DigestMd5::new("n0nce".into());
        let challenge = s.step(b"", &cfg()).unwrap();
        assert_eq!(challenge.authenticated, None);
        assert_eq!(
            challenge.token,
            b"realm=\"zk-sasl-md5\",nonce=\"n0nce\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
        );
        let done = s
            .step(
                &client_response(&challenge.token, "bob", "bobsecret"),
                &cfg(),
            )
            .unwrap();
        assert_eq!(done.authenticated.as_deref(), Some("bob"));
        assert!(done.token.starts_with(b"rspauth="));
        assert!(s.step(b"", &cfg()).is_err(), "no third step");
    }

    #[test]
    fn wrong_passwords_and_unknown_users_fail() {
        for (user, password) in [("bob", "wrong"), ("eve", "bobsecret")] {
            let mut s = DigestMd5::new("n0nce".into());
            let challenge = s.step(b"", &cfg()).unwrap();
            assert!(s
                .step(&client_response(&challenge.token, user, password), &cfg())
                .is_err());
        }
        let mut s = DigestMd5::new("n0nce".into());
        s.step(b"", &cfg()).unwrap();
        assert!(s.step(b"garbage", &cfg()).is_err());
    }

    #[test]
    fn jaas_users_are_read_from_their_section() {
        let text = r#"
            // ZooKeeper's admin guide, with a comment or two.
            Server {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_super="adminsecret"
                   /* and a user */ user_bob="bob secret";
            };
            Client {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="bob"
                   password="bob secret";
            };
        "#;
        let users = parse_jaas(text, "Server").unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["bob"], "bob secret");
        assert_eq!(users["super"], "adminsecret");
        assert!(parse_jaas(text, "Client").unwrap().is_empty());
        assert_eq!(parse_jaas(text, "Other"), Err(JaasParse::NoSection));
        assert!(matches!(
            parse_jaas("Server { m required user_a=\"x\" ", "Server"),
            Err(JaasParse::Syntax(_))
        ));
    }

    proptest::proptest! {
        /// Any bytes as the client's response, and any JAAS text, are an
        /// answer or an error, never a panic.
        #[test]
        fn arbitrary_input_never_panics(
            token in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            text in ".{0,200}",
        ) {
            let mut s = DigestMd5::new("n".into());
            let _ = s.step(b"", &cfg());
            let _ = s.step(&token, &cfg());
            let _ = parse_jaas(&text, "Server");
            let _ = directives(&String::from_utf8_lossy(&token));
        }
    }
}
