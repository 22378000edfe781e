//! Kerberos for clients: the GSSAPI SASL mechanism (RFC 4752) over MIT's
//! GSS-API library, as ZooKeeper's server runs it when the JAAS `Server`
//! section logs in with `Krb5LoginModule` (its `ZooKeeperSaslServer`
//! then creates a GSSAPI `SaslServer` instead of DIGEST-MD5).
//!
//! [`Acceptor`] holds the server's credentials (its principal's key from
//! the keytab) and the rules that turn a client's principal into its
//! `sasl` id; [`GssapiExchange`] is one connection's exchange: a token in,
//! a token (or none) out, and at the end the id. The pipeline moves the
//! tokens.

use std::path::PathBuf;
use std::sync::Arc;

use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL, GSS_NT_USER_NAME};

use crate::kerberos_name::NameMapping;

/// What the JAAS `Server` section's `Krb5LoginModule` entry and zoo.cfg
/// say about the server's Kerberos login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KerberosSettings {
    /// The entry's `principal`, e.g. `zookeeper/host@REALM`.
    pub principal: String,
    /// The entry's `keyTab`; the library's default keytab without it.
    pub keytab: Option<PathBuf>,
    /// `java.security.krb5.conf` (a JVM property for ZooKeeper, a zoo.cfg
    /// key for zab): the Kerberos configuration; the library's default
    /// (`KRB5_CONFIG`, else `/etc/krb5.conf`) without it.
    pub krb5_conf: Option<PathBuf>,
    /// How principals become `sasl` ids: `security.auth_to_local`,
    /// `kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal`.
    pub names: NameMapping,
}

/// Points MIT's library at the configured krb5.conf and keytab. It reads
/// them from the environment only, so this runs at start-up, before the
/// server starts any thread.
fn prepare_environment(k: &KerberosSettings) {
    if let Some(conf) = &k.krb5_conf {
        std::env::set_var("KRB5_CONFIG", conf);
    }
    if let Some(keytab) = &k.keytab {
        std::env::set_var("KRB5_KTNAME", keytab);
    }
}

/// The process's acceptor, once [`install`]ed: Kerberos settings are the
/// process's own (MIT's library reads them from its environment).
static INSTALLED: std::sync::OnceLock<Arc<Acceptor>> = std::sync::OnceLock::new();

/// Sets up Kerberos for clients at start-up, before any thread: points the
/// library at the krb5.conf and keytab, then acquires the server's key.
pub fn install(k: &KerberosSettings) -> Result<(), String> {
    prepare_environment(k);
    let acceptor = Acceptor::new(k)?;
    tracing::info!(principal = %k.principal, realm = %acceptor.default_realm, "Kerberos for clients (GSSAPI)");
    let _ = INSTALLED.set(Arc::new(acceptor));
    Ok(())
}

/// The acceptor [`install`] set up, if any.
pub fn installed() -> Option<Arc<Acceptor>> {
    INSTALLED.get().cloned()
}

/// The server's side of Kerberos, set up once at start-up.
pub struct Acceptor {
    cred: Cred,
    default_realm: String,
    names: NameMapping,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("default_realm", &self.default_realm)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Acquires the principal's key from the keytab. An error stops the
    /// server, as ZooKeeper's "Could not configure server because SASL
    /// configuration did not allow the ZooKeeper server to authenticate
    /// itself properly" does.
    pub fn new(k: &KerberosSettings) -> Result<Acceptor, String> {
        let mut mechs = OidSet::new();
        mechs.add(GSS_MECH_KRB5).map_err(|e| e.to_string())?;
        let name = Name::new(k.principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|e| format!("principal {:?}: {e}", k.principal))?;
        let cred = Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&mechs))
            .map_err(|e| format!("the key of {:?} (keytab {:?}): {e}", k.principal, k.keytab))?;
        // The library appends its default realm to a bare name.
        let probe = Name::new(b"zab", Some(GSS_NT_USER_NAME))
            .and_then(|n| n.canonicalize(Some(GSS_MECH_KRB5)))
            .map_err(|e| format!("the default realm: {e}"))?;
        let default_realm = probe
            .to_string()
            .split_once('@')
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default();
        Ok(Acceptor {
            cred,
            default_realm,
            names: k.names.clone(),
        })
    }

    /// A connection's exchange.
    pub fn exchange(&self) -> GssapiExchange {
        GssapiExchange {
            ctx: ServerCtx::new(Some(self.cred.clone())),
            stage: Stage::Accepting,
        }
    }

    /// The `sasl` id of an authenticated principal ([`NameMapping`]).
    pub fn authorized_id(&self, principal: &str) -> String {
        self.names.id(&self.default_realm, principal)
    }
}

/// Where a connection's exchange is (the JDK's `GssKrb5Server` stages).
enum Stage {
    /// The GSS-API context is being established.
    Accepting,
    /// Established; the client's empty token is awaited before the
    /// server offers its security layers.
    Established {
        peer: String,
    },
    /// The layers are offered; the client's choice is awaited.
    Offered {
        peer: String,
    },
    Done,
}

/// One connection's GSSAPI exchange.
pub struct GssapiExchange {
    ctx: ServerCtx,
    stage: Stage,
}

/// What a step yields.
#[derive(Debug, PartialEq, Eq)]
pub struct GssapiStep {
    /// The token to send back; `None` is SASL's null answer (the last step).
    pub token: Option<Vec<u8>>,
    /// Set when the exchange completed: the client's principal.
    pub principal: Option<String>,
}

/// "No security layer", the only one ZooKeeper's server offers
/// (`javax.security.sasl.qop` = auth), and the largest message it takes.
const NO_SECURITY_LAYER: u8 = 1;
const MAX_BUFFER: u32 = 65536;

impl GssapiExchange {
    /// Evaluates the client's token (`SaslServer.evaluateResponse`). An
    /// error ends the exchange: the client failed to authenticate.
    pub fn step(&mut self, token: &[u8]) -> Result<GssapiStep, String> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Accepting => {
                let out = self
                    .ctx
                    .step(token, None)
                    .map_err(|e| format!("GSS-API: {e}"))?;
                if !self.ctx.is_complete() {
                    self.stage = Stage::Accepting;
                    return Ok(reply(out.map(|b| b.to_vec())));
                }
                let peer = self
                    .ctx
                    .source_name()
                    .map_err(|e| format!("GSS-API: {e}"))?
                    .to_string();
                match out {
                    // The context's last token goes out first; the client
                    // answers it with an empty one.
                    Some(b) => {
                        self.stage = Stage::Established { peer };
                        Ok(reply(Some(b.to_vec())))
                    }
                    None => self.offer(peer),
                }
            }
            Stage::Established { peer } => {
                if !token.is_empty() {
                    return Err("expected an empty token once the context was established".into());
                }
                self.offer(peer)
            }
            Stage::Offered { peer } => {
                let choice = self
                    .ctx
                    .unwrap(token)
                    .map_err(|e| format!("GSS-API unwrap: {e}"))?;
                let Some(&layer) = choice.first() else {
                    return Err("empty security layer choice".into());
                };
                if choice.len() < 4 || layer & NO_SECURITY_LAYER == 0 {
                    return Err(format!(
                        "client chose an unsupported security layer {layer}"
                    ));
                }
                // Any authorization id the client names is ignored:
                // ZooKeeper authorizes the authenticated principal itself.
                Ok(GssapiStep {
                    token: None,
                    principal: Some(peer),
                })
            }
            Stage::Done => Err("GSSAPI authentication already complete".into()),
        }
    }

    /// The server's offer, wrapped: the layers it supports and its largest
    /// message (RFC 4752 §3.1).
    fn offer(&mut self, peer: String) -> Result<GssapiStep, String> {
        let max = MAX_BUFFER.to_be_bytes();
        let offer = [NO_SECURITY_LAYER, max[1], max[2], max[3]];
        let wrapped = self
            .ctx
            .wrap(false, &offer)
            .map_err(|e| format!("GSS-API wrap: {e}"))?;
        self.stage = Stage::Offered { peer };
        Ok(reply(Some(wrapped.to_vec())))
    }
}

fn reply(token: Option<Vec<u8>>) -> GssapiStep {
    GssapiStep {
        token: Some(token.unwrap_or_default()),
        principal: None,
    }
}
