//! SASL: the JAAS file ZooKeeper's login modules read, for clients (the
//! `Server` section: `DigestLoginModule` users, or a `Krb5LoginModule`
//! principal and keytab; reference D.9: a success adds `sasl:<user>`) and
//! between servers (`quorum.auth.*`: the `QuorumServer` section's users and
//! the `QuorumLearner` section's own credentials).
//!
//! The exchanges themselves are elsewhere: DIGEST-MD5 in
//! `zab_wire::digest_md5`, Kerberos in [`crate::sasl_gssapi`]. The pipeline
//! moves a client's tokens and adds the identities, the quorum transports
//! move the servers'.

use std::collections::HashMap;
use std::path::Path;

use zab_wire::quorum_auth::Credentials;

/// Server-wide SASL settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// `user_<name>="<password>"` options of the JAAS section.
    pub users: HashMap<String, String>,
    /// `zookeeper.superUser` (and `zookeeper.superUser.*`): authenticated
    /// users that are also `super`.
    pub super_users: Vec<String>,
}

/// Why a JAAS file does not give what a section should.
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
    #[error("{path}: section {section:?} has no {key}=\"...\" to log in with")]
    NoLogin {
        path: String,
        section: String,
        key: &'static str,
    },
}

/// One login module line of a JAAS section: the module's class and its
/// `key="value"` options, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JaasEntry {
    module: String,
    options: Vec<(String, String)>,
}

impl JaasEntry {
    fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The entries of JAAS section `section` in the file at `path`.
fn load_section(path: &Path, section: &str) -> Result<Vec<JaasEntry>, JaasError> {
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

/// ZooKeeper's Kerberos login module, whose entry makes the server's SASL
/// mechanism GSSAPI.
const KRB5_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// How the server logs in for its clients, from its JAAS section:
/// ZooKeeper's `ZooKeeperSaslServer` offers GSSAPI when the login has a
/// Kerberos principal (a `Krb5LoginModule` entry), DIGEST-MD5 with the
/// section's users otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLogin {
    Digest(HashMap<String, String>),
    /// The entry's `principal` and `keyTab`.
    Kerberos {
        principal: String,
        keytab: Option<std::path::PathBuf>,
    },
}

/// Reads the server's login for clients from JAAS section `section`.
pub fn load_server_login(path: &Path, section: &str) -> Result<ServerLogin, JaasError> {
    let entries = load_section(path, section)?;
    if let Some(krb5) = entries.iter().find(|e| e.module == KRB5_LOGIN_MODULE) {
        let principal = krb5.get("principal").ok_or_else(|| JaasError::NoLogin {
            path: path.display().to_string(),
            section: section.to_owned(),
            key: "principal",
        })?;
        return Ok(ServerLogin::Kerberos {
            principal: principal.to_owned(),
            keytab: krb5.get("keyTab").map(std::path::PathBuf::from),
        });
    }
    Ok(ServerLogin::Digest(users(entries)))
}

/// The users (`user_<name>="<password>"`) of JAAS section `section`:
/// ZooKeeper's `zookeeper.sasl.serverconfig` (default `Server`) for
/// clients, `quorum.auth.server.saslLoginContext` (default `QuorumServer`)
/// for servers.
pub fn load_jaas(path: &Path, section: &str) -> Result<HashMap<String, String>, JaasError> {
    Ok(users(load_section(path, section)?))
}

fn users(entries: Vec<JaasEntry>) -> HashMap<String, String> {
    entries
        .into_iter()
        .flat_map(|e| e.options)
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_owned(), v)))
        .collect()
}

/// How this server logs in when it opens a link to another, from its
/// `QuorumLearner` section: Kerberos with a `Krb5LoginModule` entry
/// (ZooKeeper's `SecurityUtils.createSaslClient` picks GSSAPI when the
/// login has a principal), DIGEST-MD5 with `username` and `password`
/// otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerLogin {
    Digest(Credentials),
    Kerberos {
        principal: String,
        keytab: Option<std::path::PathBuf>,
    },
}

/// Reads the learner login of JAAS section `section`.
pub fn load_learner_login(path: &Path, section: &str) -> Result<LearnerLogin, JaasError> {
    match load_server_login(path, section)? {
        ServerLogin::Kerberos { principal, keytab } => {
            Ok(LearnerLogin::Kerberos { principal, keytab })
        }
        ServerLogin::Digest(_) => load_jaas_login(path, section).map(LearnerLogin::Digest),
    }
}

/// The `username` and `password` of JAAS section `section`
/// (`quorum.auth.learner.saslLoginContext`, default `QuorumLearner`): what
/// this server authenticates as when it opens a link to another.
pub fn load_jaas_login(path: &Path, section: &str) -> Result<Credentials, JaasError> {
    let options: Vec<(String, String)> = load_section(path, section)?
        .into_iter()
        .flat_map(|e| e.options)
        .collect();
    let get = |key: &'static str| {
        options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| JaasError::NoLogin {
                path: path.display().to_string(),
                section: section.to_owned(),
                key,
            })
    };
    Ok(Credentials {
        user: get("username")?,
        password: get("password")?,
    })
}

#[derive(Debug, PartialEq)]
enum JaasParse {
    NoSection,
    Syntax(String),
}

/// The options of one section of a JAAS login configuration, in order:
/// `Name { module flag key="value" ...; ... };`, with `//` and `/* */`
/// comments.
fn parse_jaas(text: &str, section: &str) -> Result<Vec<JaasEntry>, JaasParse> {
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
            let mut entries = Vec::new();
            let body = &tokens[i + 2..end];
            // Each entry: module, flag, key = value ..., `;`.
            let mut j = 0;
            while j < body.len() {
                let mut entry = JaasEntry {
                    module: body[j].clone(),
                    options: Vec::new(),
                };
                j += 2;
                while j < body.len() && body[j] != ";" {
                    let (Some(key), Some("="), Some(value)) = (
                        body.get(j),
                        body.get(j + 1).map(String::as_str),
                        body.get(j + 2),
                    ) else {
                        return Err(JaasParse::Syntax("expected key=\"value\"".into()));
                    };
                    entry.options.push((key.clone(), value.clone()));
                    j += 3;
                }
                entries.push(entry);
                j += 1;
            }
            return Ok(entries);
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

/// A DIGEST-MD5 client's answer to `challenge` on the client port, as the
/// JDK client makes it; for the pipeline's tests.
#[cfg(test)]
pub(crate) fn client_response(challenge: &[u8], user: &str, password: &str) -> Vec<u8> {
    zab_wire::digest_md5::ClientExchange::new(
        zab_wire::digest_md5::CLIENT_PORT,
        user,
        password,
        "cnonce1".into(),
    )
    .step(challenge)
    .expect("a challenge")
    .expect("a response")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let server = users(parse_jaas(text, "Server").unwrap());
        assert_eq!(server.len(), 2);
        assert_eq!(server["bob"], "bob secret");
        assert_eq!(server["super"], "adminsecret");
        assert!(users(parse_jaas(text, "Client").unwrap()).is_empty());
        assert_eq!(parse_jaas(text, "Other"), Err(JaasParse::NoSection));
        assert!(matches!(
            parse_jaas("Server { m required user_a=\"x\" ", "Server"),
            Err(JaasParse::Syntax(_))
        ));
    }

    /// A `Krb5LoginModule` entry makes the login Kerberos, with its
    /// principal and keytab (ZooKeeper's admin guide's example).
    #[test]
    fn a_krb5_entry_makes_the_server_login_kerberos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jaas.conf");
        std::fs::write(
            &path,
            r#"
            Server {
              com.sun.security.auth.module.Krb5LoginModule required
              useKeyTab=true
              keyTab="/path/to/server/keytab"
              storeKey=true
              useTicketCache=false
              principal="zookeeper/yourzkhostname@EXAMPLE.COM";
            };
            Digest { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob="pw"; };
            NoPrincipal { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };
        "#,
        )
        .unwrap();
        assert_eq!(
            load_server_login(&path, "Server").unwrap(),
            ServerLogin::Kerberos {
                principal: "zookeeper/yourzkhostname@EXAMPLE.COM".into(),
                keytab: Some("/path/to/server/keytab".into()),
            }
        );
        assert_eq!(
            load_server_login(&path, "Digest").unwrap(),
            ServerLogin::Digest([("bob".to_owned(), "pw".to_owned())].into())
        );
        assert!(matches!(
            load_server_login(&path, "NoPrincipal"),
            Err(JaasError::NoLogin {
                key: "principal",
                ..
            })
        ));
    }

    /// ZooKeeper's quorum SASL sections (its admin guide's example): the
    /// server section's users, the learner section's own login.
    #[test]
    fn quorum_sections_give_users_and_a_login() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jaas.conf");
        std::fs::write(
            &path,
            r#"
            QuorumServer {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_test="test";
            };
            QuorumLearner {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="test"
                   password="test";
            };
            Broken { org.apache.zookeeper.server.auth.DigestLoginModule required username="x"; };
        "#,
        )
        .unwrap();
        assert_eq!(load_jaas(&path, "QuorumServer").unwrap()["test"], "test");
        let login = load_jaas_login(&path, "QuorumLearner").unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("test", "test")
        );
        let err = load_jaas_login(&path, "Broken").unwrap_err().to_string();
        assert!(err.contains("no password"), "{err}");
        assert!(matches!(
            load_jaas_login(&path, "Missing"),
            Err(JaasError::NoSection { .. })
        ));
    }

    proptest::proptest! {
        /// Any JAAS text is options or an error, never a panic.
        #[test]
        fn arbitrary_input_never_panics(text in ".{0,200}") {
            let _ = parse_jaas(&text, "Server");
        }
    }
}
