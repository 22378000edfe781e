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
//!
//! Kerberos between servers (`quorum.auth.*` with `Krb5LoginModule` in the
//! `QuorumServer` and `QuorumLearner` sections) uses the same exchange on
//! the listening side ([`QuorumAcceptor`]) and RFC 4752's client on the
//! opening side ([`QuorumInitiator`], [`GssapiClient`]); zab-wire's
//! `quorum_auth` runs them.

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex};

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL, GSS_NT_USER_NAME};
use zab_wire::quorum_auth::{
    Authenticated, ClientMechanism, KerberosAcceptor, KerberosInitiator, LearnerLogin, QuorumSasl,
    ServerLogin, ServerMechanism, ServerStep,
};

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
    /// The authorization id the client named in its last message, if any.
    pub authzid: Option<String>,
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
                // On the client port the authorization id is ignored
                // (ZooKeeper authorizes the principal itself); between
                // servers it must be the principal (`quorum_auth`).
                let authzid = String::from_utf8_lossy(&choice[4..]).into_owned();
                Ok(GssapiStep {
                    token: None,
                    principal: Some(peer),
                    authzid: Some(authzid).filter(|z| !z.is_empty()),
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
        authzid: None,
    }
}

fn gss(context: &str) -> impl Fn(GssError) -> String + '_ {
    move |e| format!("GSS-API {context}: {e}")
}

/// Acquires `principal`'s credentials for `usage` from the credential
/// store `store` (MIT's `gss_acquire_cred_from`; `keytab`, `client_keytab`
/// and `ccache` entries): each login reads its own keytab, so the client
/// port's login and the two quorum logins may each have their own, as
/// each JAAS section has in ZooKeeper.
fn acquire_from(
    principal: &str,
    usage: CredUsage,
    store: &[(&std::ffi::CStr, CString)],
) -> Result<Cred, String> {
    use libgssapi_sys as sys;
    // GSS_KRB5_NT_PRINCIPAL_NAME, 1.2.840.113554.1.2.2.1: the name is a
    // whole principal, taken as written (no host name canonicalization).
    let mut oid_bytes = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
    let mut oid = sys::gss_OID_desc {
        length: oid_bytes.len() as u32,
        elements: oid_bytes.as_mut_ptr() as *mut c_void,
    };
    let mut text = sys::gss_buffer_desc {
        length: principal.len(),
        value: principal.as_ptr() as *mut c_void,
    };
    let mut minor = 0;
    let mut name: sys::gss_name_t = ptr::null_mut();
    // SAFETY: the buffer and OID point at live memory for the call; the
    // library copies what it keeps into `name`.
    let major = unsafe { sys::gss_import_name(&mut minor, &mut text, &mut oid, &mut name) };
    if major != sys::GSS_S_COMPLETE {
        return Err(format!(
            "principal {principal:?}: {}",
            GssError {
                major: MajorFlags::from_bits_retain(major),
                minor
            }
        ));
    }
    let mut elements: Vec<sys::gss_key_value_element_desc> = store
        .iter()
        .map(|(key, value)| sys::gss_key_value_element_desc {
            key: key.as_ptr(),
            value: value.as_ptr(),
        })
        .collect();
    let set = sys::gss_key_value_set_desc {
        count: elements.len() as u32,
        elements: elements.as_mut_ptr(),
    };
    let usage = match usage {
        CredUsage::Initiate => sys::GSS_C_INITIATE,
        CredUsage::Accept => sys::GSS_C_ACCEPT,
        CredUsage::Both => sys::GSS_C_BOTH,
    };
    // Kerberos alone (1.2.840.113554.1.2.2), as the client port's
    // acceptor: with the library's default set, an acceptor would also
    // speak SPNEGO and answer an empty token with an offer of its own.
    let mut krb5_bytes = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
    let mut krb5 = sys::gss_OID_desc {
        length: krb5_bytes.len() as u32,
        elements: krb5_bytes.as_mut_ptr() as *mut c_void,
    };
    let mut mechs = sys::gss_OID_set_desc {
        count: 1,
        elements: &mut krb5,
    };
    let mut cred: sys::gss_cred_id_t = ptr::null_mut();
    // SAFETY: `name` was imported above, `set`, `mechs` and what they point
    // at outlive the call, and the credential handle it returns becomes the
    // `Cred`'s.
    let major = unsafe {
        let major = sys::gss_acquire_cred_from(
            &mut minor,
            name,
            sys::_GSS_C_INDEFINITE,
            &mut mechs,
            usage as sys::gss_cred_usage_t,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        let mut ignored = 0;
        sys::gss_release_name(&mut ignored, &mut name);
        major
    };
    if major != sys::GSS_S_COMPLETE {
        return Err(format!(
            "the key of {principal:?}: {}",
            GssError {
                major: MajorFlags::from_bits_retain(major),
                minor
            }
        ));
    }
    // SAFETY: the handle is ours alone.
    Ok(unsafe { Cred::from_c(cred) })
}

fn store_entry(
    key: &'static std::ffi::CStr,
    value: &str,
) -> Result<(&'static std::ffi::CStr, CString), String> {
    CString::new(value)
        .map(|v| (key, v))
        .map_err(|_| format!("{value:?} holds a NUL byte"))
}

fn keytab_entry(
    key: &'static std::ffi::CStr,
    keytab: &Option<PathBuf>,
) -> Result<Vec<(&'static std::ffi::CStr, CString)>, String> {
    keytab
        .as_deref()
        .map(Path::to_str)
        .map(|path| store_entry(key, path.ok_or("a keytab path that is not UTF-8")?))
        .into_iter()
        .collect()
}

/// A Kerberos credential acquired on first use and kept: the keytab is
/// read again by the library at each use, so a re-keyed principal is
/// picked up without a restart.
#[derive(Debug)]
struct Login {
    principal: String,
    keytab: Option<PathBuf>,
    cred: Mutex<Option<Cred>>,
}

impl Login {
    fn cred(
        &self,
        acquire: impl FnOnce(&str, &Option<PathBuf>) -> Result<Cred, String>,
    ) -> Result<Cred, String> {
        let mut held = self.cred.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cred) = held.as_ref() {
            return Ok(cred.clone());
        }
        let cred = acquire(&self.principal, &self.keytab)?;
        *held = Some(cred.clone());
        Ok(cred)
    }
}

/// The listening side of Kerberos between servers: the `QuorumServer`
/// section's `Krb5LoginModule` login.
#[derive(Debug)]
pub struct QuorumAcceptor(Login);

impl QuorumAcceptor {
    pub fn new(principal: String, keytab: Option<PathBuf>) -> QuorumAcceptor {
        QuorumAcceptor(Login {
            principal,
            keytab,
            cred: Mutex::new(None),
        })
    }
}

impl KerberosAcceptor for QuorumAcceptor {
    fn principal(&self) -> &str {
        &self.0.principal
    }

    fn accept(&self) -> Result<Box<dyn ServerMechanism>, String> {
        let cred = self.0.cred(|principal, keytab| {
            acquire_from(
                principal,
                CredUsage::Accept,
                &keytab_entry(c"keytab", keytab)?,
            )
        })?;
        Ok(Box::new(GssapiExchange {
            ctx: ServerCtx::new(Some(cred)),
            stage: Stage::Accepting,
        }))
    }
}

impl ServerMechanism for GssapiExchange {
    fn step(&mut self, response: &[u8]) -> Result<ServerStep, String> {
        let step = GssapiExchange::step(self, response)?;
        Ok(ServerStep {
            token: step.token.unwrap_or_default(),
            authenticated: step.principal.map(|id| Authenticated {
                id,
                authzid: step.authzid,
            }),
        })
    }
}

/// Numbers the learner logins' ticket caches (see [`QuorumInitiator`]).
static LEARNER_CCACHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The opening side of Kerberos between servers: the `QuorumLearner`
/// section's `Krb5LoginModule` login. Its initial ticket comes from the
/// keytab when first needed and again when it runs out (MIT's client
/// keytab initiation). The tickets are kept in a cache of its own in
/// memory, so that servers run by one user on one machine never share (or
/// overwrite) each other's, as the default file cache under `/tmp` would
/// have them do.
#[derive(Debug)]
pub struct QuorumInitiator {
    login: Login,
    ccache: String,
}

impl QuorumInitiator {
    pub fn new(principal: String, keytab: Option<PathBuf>) -> QuorumInitiator {
        let n = LEARNER_CCACHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        QuorumInitiator {
            login: Login {
                principal,
                keytab,
                cred: Mutex::new(None),
            },
            ccache: format!("MEMORY:zab-quorum-learner-{n}"),
        }
    }
}

impl KerberosInitiator for QuorumInitiator {
    fn principal(&self) -> &str {
        &self.login.principal
    }

    fn initiate(&self, service: &str) -> Result<Box<dyn ClientMechanism>, String> {
        let cred = self.login.cred(|principal, keytab| {
            let mut store = keytab_entry(c"client_keytab", keytab)?;
            store.push(store_entry(c"ccache", &self.ccache)?);
            acquire_from(principal, CredUsage::Initiate, &store)
        })?;
        // The JDK's client names the whole principal as its authorization
        // id, and ZooKeeper's server requires the two to match.
        let authzid = cred.name().map_err(gss("name"))?.to_string();
        let target = Name::new(service.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|e| format!("service principal {service:?}: {e}"))?;
        Ok(Box::new(GssapiClient {
            ctx: ClientCtx::new(
                Some(cred),
                target,
                CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_INTEG_FLAG,
                Some(GSS_MECH_KRB5),
            ),
            stage: ClientStage::Context,
            authzid,
        }))
    }
}

/// Where the client's exchange is (the JDK's `GssKrb5Client` stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientStage {
    /// The context is being established (mutual authentication: the
    /// server's reply token is checked).
    Context,
    /// Established; the server's wrapped offer of security layers is
    /// awaited.
    Established,
    Done,
}

/// RFC 4752's client: the GSS-API context, then the answer to the
/// server's offer (no security layer, and the authorization id).
pub struct GssapiClient {
    ctx: ClientCtx,
    stage: ClientStage,
    authzid: String,
}

impl ClientMechanism for GssapiClient {
    fn initial(&mut self) -> Result<Vec<u8>, String> {
        let token = self.ctx.step(None, None).map_err(gss("initiate"))?;
        if self.ctx.is_complete() {
            self.stage = ClientStage::Established;
        }
        token
            .map(|t| t.to_vec())
            .ok_or_else(|| "GSS-API gave no first token".to_owned())
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self.stage {
            ClientStage::Context => {
                let token = self
                    .ctx
                    .step(Some(challenge), None)
                    .map_err(gss("initiate"))?;
                if self.ctx.is_complete() {
                    self.stage = ClientStage::Established;
                }
                // Once established without a token of its own, the client
                // answers with an empty one, and the server makes its offer.
                Ok(Some(token.map(|t| t.to_vec()).unwrap_or_default()))
            }
            ClientStage::Established => {
                let offer = self.ctx.unwrap(challenge).map_err(gss("unwrap"))?;
                if offer.len() != 4 {
                    return Err(format!("an offer of {} bytes, not 4", offer.len()));
                }
                if offer[0] & NO_SECURITY_LAYER == 0 {
                    return Err(format!(
                        "the server offers no plain layer (mask {})",
                        offer[0]
                    ));
                }
                // No security layer, so no message size (RFC 4752 §3.1).
                let mut choice = vec![NO_SECURITY_LAYER, 0, 0, 0];
                choice.extend_from_slice(self.authzid.as_bytes());
                let wrapped = self.ctx.wrap(false, &choice).map_err(gss("wrap"))?;
                self.stage = ClientStage::Done;
                Ok(Some(wrapped.to_vec()))
            }
            ClientStage::Done => Err("GSSAPI authentication already complete".into()),
        }
    }

    fn is_complete(&self) -> bool {
        self.stage == ClientStage::Done
    }
}

/// Whether `sasl` logs in with Kerberos on either side.
pub fn quorum_uses_kerberos(sasl: &QuorumSasl) -> bool {
    matches!(sasl.server, ServerLogin::Kerberos(_))
        || matches!(sasl.learner, Some(LearnerLogin::Kerberos { .. }))
}

/// Points the library at `krb5.conf`. It reads it from the environment
/// only, so this runs at start-up, before the server starts any thread.
pub fn use_krb5_conf(krb5_conf: Option<&Path>) {
    if let Some(conf) = krb5_conf {
        std::env::set_var("KRB5_CONFIG", conf);
    }
}

/// Acquires the quorum logins' keys at start-up, so that a principal
/// missing from its keytab stops the server (ZooKeeper's
/// `SaslQuorumAuthServer` and `SaslQuorumAuthLearner` log in when the
/// server starts, and fail it). The learner's context built here is never
/// stepped: no ticket is asked for.
pub fn check_quorum_logins(sasl: &QuorumSasl) -> Result<(), String> {
    if let ServerLogin::Kerberos(acceptor) = &sasl.server {
        acceptor.accept()?;
    }
    if let Some(LearnerLogin::Kerberos { initiator, .. }) = &sasl.learner {
        initiator.initiate(initiator.principal())?;
    }
    Ok(())
}
