//! Access control (reference D.9): a connection's identities, the `auth`
//! operation, permission checks, the ACL fix-up done on create/setACL, and
//! the interning of ACL lists that ZooKeeper's `ReferenceCountedACLCache`
//! does (a million znodes usually share a handful of ACLs).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use zab_wire::jute::{perms, Acl, ClientInfo, ErrorCode, Id, Jute as _};

use crate::java_hash_set::java_string_hash;

/// An interned, immutable ACL list shared by every znode that uses it. An
/// `Arc` of a `Vec` rather than of a slice: a thin pointer, 8 bytes in
/// every znode instead of 16.
pub type AclList = Arc<Vec<Acl>>;

const WORLD: &str = "world";
const ANYONE: &str = "anyone";
const DIGEST: &str = "digest";
const IP: &str = "ip";
const AUTH: &str = "auth";
const SUPER: &str = "super";
/// Identities from TLS client certificates (ZooKeeper's
/// `X509AuthenticationProvider`): the certificate's subject.
const X509: &str = "x509";
/// Identities from SASL (ZooKeeper's `SASLAuthenticationProvider`): the
/// authenticated user.
const SASL: &str = "sasl";

/// The authentication providers registered beside `ip` and `digest`
/// (ZooKeeper's `zookeeper.authProvider.*` classes): their schemes are
/// valid in ACLs, and their ids count as authenticated when `auth` ACLs
/// expand. Without one, ZooKeeper knows no such scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Providers {
    /// `X509AuthenticationProvider`.
    pub x509: bool,
    /// `SASLAuthenticationProvider`.
    pub sasl: bool,
}

/// The identities of one connection: it starts with `ip:<remote address>`;
/// a TLS client certificate adds `x509:` (and `super:` for the configured
/// super user); `auth` adds `digest:` ids and possibly `super:` (reference
/// D.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    ids: Vec<Id>,
}

impl AuthInfo {
    pub fn new(remote_ip: IpAddr) -> Self {
        AuthInfo {
            ids: vec![Id::new(IP, &java_host_address(remote_ip))],
        }
    }

    /// Identities as a learner forwards them with a request (REQUEST
    /// packets carry the client's `authinfo`).
    pub fn from_ids(mut ids: Vec<Id>) -> Self {
        // Deduplicated in place, first occurrence kept, as `add` would: the
        // leader builds one per forwarded request, so no second vector.
        let mut kept = 0;
        for i in 0..ids.len() {
            if !ids[..kept].contains(&ids[i]) {
                ids.swap(kept, i);
                kept += 1;
            }
        }
        ids.truncate(kept);
        AuthInfo { ids }
    }

    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|id| id.scheme == SUPER)
    }

    /// Adds an identity unless already present (`ServerCnxn.addAuthInfo`).
    pub fn add(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }
}

/// How `InetAddress.getHostAddress` prints an address: IPv6 uncompressed,
/// so `::1` is `0:0:0:0:0:0:0:1`; IPv4-mapped addresses as IPv4.
fn java_host_address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// Server-wide authentication settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `super:BASE64`.
    pub super_digest: Option<String>,
    /// `zookeeper.DigestAuthenticationProvider.digestAlg`.
    pub digest_alg: DigestAlg,
}

/// The hash of `digest` ids (`zookeeper.DigestAuthenticationProvider.
/// digestAlg`, default SHA1). Every server of an ensemble must use the
/// same one, as must the tools that make ids for ACLs and `superDigest`;
/// a FIPS deployment of ZooKeeper moves to SHA-256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DigestAlg {
    #[default]
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    /// The algorithm a Java `MessageDigest.getInstance` name means, for
    /// the SHA family zab computes (`SHA1`, `SHA-1`, `SHA-256`, …, any
    /// case); `None` for any other, which ZooKeeper may know but zab does
    /// not.
    pub fn from_java_name(name: &str) -> Option<DigestAlg> {
        match name.trim().to_ascii_uppercase().as_str() {
            "SHA" | "SHA1" | "SHA-1" => Some(DigestAlg::Sha1),
            "SHA256" | "SHA-256" => Some(DigestAlg::Sha256),
            "SHA384" | "SHA-384" => Some(DigestAlg::Sha384),
            "SHA512" | "SHA-512" => Some(DigestAlg::Sha512),
            _ => None,
        }
    }

    fn hash(self, bytes: &[u8]) -> Vec<u8> {
        use ring::digest::{digest, SHA256, SHA384, SHA512};
        match self {
            DigestAlg::Sha1 => Sha1::digest(bytes).to_vec(),
            DigestAlg::Sha256 => digest(&SHA256, bytes).as_ref().to_vec(),
            DigestAlg::Sha384 => digest(&SHA384, bytes).as_ref().to_vec(),
            DigestAlg::Sha512 => digest(&SHA512, bytes).as_ref().to_vec(),
        }
    }
}

/// `digest` scheme: `user:BASE64(SHA1("user:password"))` (reference D.9),
/// with ZooKeeper's default algorithm.
pub fn digest_id(user_password: &str) -> String {
    digest_id_with(DigestAlg::Sha1, user_password)
}

/// `digest` scheme with `alg`: `user:BASE64(alg("user:password"))`
/// (`DigestAuthenticationProvider.generateDigest`).
pub fn digest_id_with(alg: DigestAlg, user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = alg.hash(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The `auth` packet (op 100). `digest` always succeeds (a wrong password
/// simply grants nothing, behaviour 45); `ip` re-asserts the remote address;
/// `x509` the connection's certificate; any other scheme is AuthFailed
/// (-115) and the server closes the connection.
pub fn authenticate(
    auth: &mut AuthInfo,
    cfg: &AuthConfig,
    scheme: &str,
    data: &[u8],
) -> Result<(), ErrorCode> {
    match scheme {
        DIGEST => {
            let id = digest_id_with(cfg.digest_alg, &String::from_utf8_lossy(data));
            let is_super = cfg.super_digest.as_deref() == Some(id.as_str());
            auth.add(Id::new(DIGEST, &id));
            if is_super {
                auth.add(Id::new(SUPER, ""));
            }
            Ok(())
        }
        // IPAuthenticationProvider adds the connection's own address, which
        // every connection already carries.
        IP => Ok(()),
        // X509AuthenticationProvider checks the connection's certificate
        // again and adds its id: a connection holds one exactly when its
        // TLS handshake gave a trusted certificate and the provider is
        // registered. Without one, AuthFailed.
        X509 if auth.ids.iter().any(|id| id.scheme == X509) => Ok(()),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// The jute-generated `Id.hashCode`.
fn java_id_hash(id: &Id) -> i32 {
    let r = 17i32
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.scheme));
    r.wrapping_mul(37).wrapping_add(java_string_hash(&id.id))
}

/// The order in which ZooKeeper iterates a connection's identities: they live
/// in a `ConcurrentHashMap`-backed set, so the order is by hash bucket
/// (`spread(h) & (n - 1)`, table size 16 growing at 3/4 load), insertion
/// order within a bucket. This is why whoAmI lists `digest` before `ip` in
/// reference D.9's verified example.
fn java_set_order(ids: &[Id]) -> Vec<&Id> {
    let mut n: usize = 16;
    while ids.len() >= n * 3 / 4 {
        n *= 2;
    }
    let bucket = |id: &Id| {
        let h = java_id_hash(id) as u32;
        ((h ^ (h >> 16)) & 0x7fff_ffff) as usize & (n - 1)
    };
    let mut out: Vec<&Id> = ids.iter().collect();
    out.sort_by_key(|id| bucket(id));
    out
}

/// `whoAmI` (op 107): `(scheme, user)` per identity, in ZooKeeper's order;
/// the user of a digest id is the part before `:`, of an ip id the address.
pub fn who_am_i(auth: &AuthInfo) -> Vec<ClientInfo> {
    java_set_order(&auth.ids)
        .into_iter()
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: match id.scheme.as_str() {
                DIGEST => id.id.split(':').next().unwrap_or("").to_owned(),
                // No provider owns `super` (`AuthUtil.getUser` is null, shown
                // as ""), even where the x509 super user's id names the
                // certificate.
                SUPER => String::new(),
                _ => id.id.clone(),
            },
        })
        .collect()
}

/// ZooKeeper's `checkACL` without the skipACL switch (reference D.9): an
/// empty ACL allows everything, `super` allows everything, otherwise some
/// entry whose perms intersect `perm` must be `world:anyone` or match one of
/// the connection's identities of the same scheme.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &AuthInfo, providers: Providers) -> bool {
    if acl.is_empty() || auth.is_super() {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        if a.id.scheme == WORLD && a.id.id == ANYONE {
            return true;
        }
        auth.ids
            .iter()
            .filter(|id| id.scheme == a.id.scheme)
            .any(|id| match a.id.scheme.as_str() {
                DIGEST => id.id == a.id.id,
                // An entry of a provider that is not registered matches
                // no one (`ZooKeeperServer.checkACL` finds no provider),
                // even a connection that holds such an id.
                X509 => providers.x509 && id.id == a.id.id,
                // `SASLAuthenticationProvider.matches`: a user named
                // `super` matches every sasl entry.
                SASL => providers.sasl && (id.id == a.id.id || id.id == SUPER),
                IP => ip_matches(&id.id, &a.id.id),
                _ => false,
            })
    })
}

/// getACL without ADMIN shows digest ids as `user:x` (reference D.2, reads).
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.id.scheme == DIGEST {
                if let Some(i) = a.id.id.find(':') {
                    a.id.id = format!("{}:x", &a.id.id[..i]);
                }
            }
            a
        })
        .collect()
}

/// `IPAuthenticationProvider.addr2Bytes`: dotted quad (Java's parseInt
/// accepts leading zeros) or IPv6.
fn addr_bytes(s: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 4 {
        let mut out = Vec::with_capacity(4);
        for p in parts {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let v: u32 = p.parse().ok()?;
            out.push(u8::try_from(v).ok()?);
        }
        return Some(out);
    }
    if s.contains(':') {
        if let Ok(v6) = s.parse::<Ipv6Addr>() {
            return Some(v6.octets().to_vec());
        }
    }
    None
}

/// Parses an ip ACL expression `addr[/bits]` into (address bytes, bits).
fn ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let bytes = addr_bytes(addr)?;
    let max = bytes.len() * 8;
    let bits = match bits {
        None => max,
        Some(b) => {
            let b: i64 = b.parse().ok()?;
            if b < 0 || b as usize > max {
                return None;
            }
            b as usize
        }
    };
    Some((bytes, bits))
}

/// `IPAuthenticationProvider.matches`: the first `bits` bits are equal.
fn ip_matches(remote: &str, expr: &str) -> bool {
    let Some((acl_addr, bits)) = ip_expr(expr) else {
        return false;
    };
    let Some(remote) = addr_bytes(remote) else {
        return false;
    };
    if remote.len() != acl_addr.len() {
        return false;
    }
    (0..bits).all(|i| {
        let mask = 0x80u8 >> (i % 8);
        remote[i / 8] & mask == acl_addr[i / 8] & mask
    })
}

/// `DigestAuthenticationProvider.isValid`: Java's `id.split(":")` yields
/// exactly two parts (trailing empty parts dropped, so `user:` is invalid).
fn digest_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// `SASLAuthenticationProvider.isValid` (`new KerberosName(id)`): a name
/// without `@`, or `service[/host]@realm` with no further `/` or `@`.
fn kerberos_name_valid(id: &str) -> bool {
    let Some((principal, realm)) = id.split_once('@') else {
        return true;
    };
    !realm.contains(['/', '@']) && principal.matches('/').count() <= 1
}

/// `X509AuthenticationProvider.isValid`: whether `new X500Principal(id)`
/// accepts it. Attribute values are separated by `,`, `;` or `+` outside
/// quotes and escapes; each is `type=value`, the type a keyword or an OID,
/// the value quoted, `#` and an even number of hex digits, or a string.
/// The empty name is valid.
fn distinguished_name_valid(dn: &str) -> bool {
    if dn.trim().is_empty() {
        return true;
    }
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    let mut avas = Vec::new();
    for (i, c) in dn.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' | ';' | '+' if !quoted => {
                avas.push(&dn[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if escaped || quoted {
        return false;
    }
    avas.push(&dn[start..]);
    avas.into_iter().all(attribute_valid)
}

fn attribute_valid(ava: &str) -> bool {
    /// The keywords Java's `AVAKeyword` table knows.
    const KEYWORDS: &[&str] = &[
        "CN",
        "C",
        "L",
        "S",
        "ST",
        "O",
        "OU",
        "T",
        "IP",
        "STREET",
        "DC",
        "DNQUALIFIER",
        "DNQ",
        "SURNAME",
        "GIVENNAME",
        "INITIALS",
        "GENERATION",
        "EMAIL",
        "EMAILADDRESS",
        "UID",
        "SERIALNUMBER",
    ];
    let Some((ty, value)) = ava.split_once('=') else {
        return false;
    };
    let ty = ty.trim();
    let oid = ty
        .strip_prefix("OID.")
        .or_else(|| ty.strip_prefix("oid."))
        .unwrap_or(ty);
    let keyword = KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(ty));
    let oid = oid.split('.').count() >= 2
        && oid
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !keyword && !oid {
        return false;
    }
    let value = value.trim();
    if let Some(hex) = value.strip_prefix('#') {
        return !hex.is_empty() && hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        return true;
    }
    // Unquoted: `"`, `<` and `>` only escaped.
    let mut escaped = false;
    value.chars().all(|c| {
        let ok = escaped || !matches!(c, '"' | '<' | '>');
        escaped = !escaped && c == '\\';
        ok
    })
}

/// `PrepRequestProcessor.fixupACL` (reference D.9, behaviour 44): drops
/// duplicates, expands `auth` to the connection's authenticated (non-ip)
/// identities, and refuses (InvalidACL, -114) an empty list, an `auth`
/// entry with nothing to expand to, an unknown scheme or a malformed id.
///
/// `providers` adds the x509 scheme (names `X500Principal` parses) and the
/// sasl scheme (Kerberos-shaped names), whose ids also count as
/// authenticated for `auth`.
pub fn fixup_acl(
    acl: Option<&[Acl]>,
    auth: &AuthInfo,
    providers: Providers,
) -> Result<Vec<Acl>, ErrorCode> {
    let acl = match acl {
        Some(a) if !a.is_empty() => a,
        _ => return Err(ErrorCode::InvalidAcl),
    };
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        match a.id.scheme.as_str() {
            WORLD if a.id.id == ANYONE => out.push(a.clone()),
            AUTH => {
                // Only digest, x509 and sasl identities are
                // "authenticated"; ip is not and super has no provider
                // (ZooKeeper logs and skips it). They come in the order of the connection's
                // identity set, as whoAmI lists them (checked on 3.8.0 with
                // two digests).
                let mut any = false;
                let ids = java_set_order(&auth.ids);
                let authenticated = |id: &&Id| match id.scheme.as_str() {
                    DIGEST => true,
                    X509 => providers.x509,
                    SASL => providers.sasl,
                    _ => false,
                };
                for id in ids.into_iter().filter(authenticated) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: id.clone(),
                    });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            DIGEST if digest_valid(&a.id.id) => out.push(a.clone()),
            IP if ip_expr(&a.id.id).is_some() => out.push(a.clone()),
            X509 if providers.x509 && distinguished_name_valid(&a.id.id) => out.push(a.clone()),
            SASL if providers.sasl && kerberos_name_valid(&a.id.id) => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// Interns ACL lists so znodes share them (`ReferenceCountedACLCache`).
/// Lists no znode uses any more are dropped when the cache has doubled.
#[derive(Debug, Default, Clone)]
pub(crate) struct AclCache {
    lists: HashMap<Vec<u8>, AclList>,
    purge_at: usize,
}

impl AclCache {
    pub(crate) fn intern(&mut self, acl: &[Acl]) -> AclList {
        let key = acl.to_vec().encode().to_vec();
        if let Some(list) = self.lists.get(&key) {
            return list.clone();
        }
        if self.lists.len() >= self.purge_at.max(64) {
            self.lists.retain(|_, l| Arc::strong_count(l) > 1);
            self.purge_at = self.lists.len() * 2;
        }
        let list: AclList = acl.to_vec().into();
        self.lists.insert(key, list.clone());
        list
    }
}

/// The permission a request needs, for readability at call sites.
pub(crate) const READ_OR_ADMIN: i32 = perms::READ | perms::ADMIN;

#[cfg(test)]
mod tests {
    /// x509 and SASL registered, as most of these tests assume.
    const ALL_PROVIDERS: Providers = Providers {
        x509: true,
        sasl: true,
    };

    use super::*;
    use std::net::Ipv4Addr;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    fn local() -> AuthInfo {
        AuthInfo::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    #[test]
    fn digest_matches_reference_example() {
        // Reference D.9 (verified): user:pw → user:2Om+GBbT2q/tS6pdvACZbbm7/1A=
        assert_eq!(digest_id("user:pw"), "user:2Om+GBbT2q/tS6pdvACZbbm7/1A=");
    }

    /// `addauth x509` succeeds on a connection whose certificate gave it
    /// an x509 id, and fails (the server closes) on one without.
    #[test]
    fn authenticate_x509_needs_the_connections_certificate() {
        let cfg = AuthConfig::default();
        let mut plain = local();
        assert_eq!(
            authenticate(&mut plain, &cfg, "x509", b""),
            Err(ErrorCode::AuthFailed)
        );
        let mut tls = local();
        tls.add(Id::new("x509", "CN=client"));
        assert_eq!(authenticate(&mut tls, &cfg, "x509", b""), Ok(()));
        assert_eq!(tls.ids().len(), 2, "nothing added twice");
    }

    /// `digestAlg`: the ids ZooKeeper 3.8's own `DigestAuthenticationProvider`
    /// prints for `user:pw` with `-Dzookeeper.DigestAuthenticationProvider.
    /// digestAlg=SHA-256` and `SHA-512`.
    #[test]
    fn digest_ids_with_the_configured_algorithm() {
        let alg = |name| DigestAlg::from_java_name(name).unwrap();
        assert_eq!(
            digest_id_with(alg("SHA-256"), "user:pw"),
            "user:Fh8MmK6jIxqd61iqgh3Q7UZ5AQo6NbHt+ZWIwPHmup4="
        );
        assert_eq!(
            digest_id_with(alg("sha-512"), "user:pw"),
            "user:bxuaEbeoHON6HbuCrnA/gB8aYah2KRHyD2q5whekPmB6+BuOzxIr/1zj+fA8dbkGNlWblYgcL1Riuu4O7ljjKg=="
        );
        assert_eq!(digest_id_with(alg("SHA1"), "user:pw"), digest_id("user:pw"));
        assert_eq!(DigestAlg::from_java_name("MD5"), None);
        // `auth` hashes with it, superDigest included.
        let cfg = AuthConfig {
            super_digest: Some(digest_id_with(DigestAlg::Sha256, "super:secret")),
            digest_alg: DigestAlg::Sha256,
        };
        let mut a = local();
        authenticate(&mut a, &cfg, "digest", b"user:pw").unwrap();
        assert!(a.ids().contains(&Id::new(
            "digest",
            "user:Fh8MmK6jIxqd61iqgh3Q7UZ5AQo6NbHt+ZWIwPHmup4="
        )));
        authenticate(&mut a, &cfg, "digest", b"super:secret").unwrap();
        assert!(a.is_super());
    }

    #[test]
    fn authenticate_digest_and_super() {
        let cfg = AuthConfig {
            super_digest: Some(format!("super:{}", &digest_id("super:secret")[6..])),
            ..AuthConfig::default()
        };
        let mut a = local();
        authenticate(&mut a, &cfg, "digest", b"user:pw").unwrap();
        assert!(!a.is_super());
        assert_eq!(
            a.ids()[1],
            Id::new("digest", "user:2Om+GBbT2q/tS6pdvACZbbm7/1A=")
        );
        // Twice: not duplicated.
        authenticate(&mut a, &cfg, "digest", b"user:pw").unwrap();
        assert_eq!(a.ids().len(), 2);
        authenticate(&mut a, &cfg, "digest", b"super:secret").unwrap();
        assert!(a.is_super());
        assert_eq!(
            authenticate(&mut a, &cfg, "kerberos", b"x"),
            Err(ErrorCode::AuthFailed)
        );
    }

    #[test]
    fn who_am_i_lists_identities() {
        let mut a = local();
        authenticate(&mut a, &AuthConfig::default(), "digest", b"user:pw").unwrap();
        // Reference D.9 (verified): [("digest","user"),("ip","127.0.0.1")].
        let who = who_am_i(&a);
        assert_eq!(
            who,
            vec![
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "user".into()
                },
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into()
                }
            ]
        );
        assert_eq!(java_string_hash("ip"), 3367);
        assert_eq!(java_string_hash("hello"), 99162322);
        // The x509 super user's id names its certificate; whoAmI does not.
        let x509_super = AuthInfo::from_ids(vec![Id::new("super", "CN=admin")]);
        assert_eq!(
            who_am_i(&x509_super),
            [ClientInfo {
                auth_scheme: "super".into(),
                user: String::new()
            }]
        );
    }

    #[test]
    fn ipv6_printed_like_java() {
        let a = AuthInfo::new("::1".parse().unwrap());
        assert_eq!(a.ids()[0], Id::new("ip", "0:0:0:0:0:0:0:1"));
        let m = AuthInfo::new("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(m.ids()[0], Id::new("ip", "10.0.0.1"));
    }

    #[test]
    fn check_acl_rules() {
        let a = local();
        assert!(check_acl(&[], perms::ALL, &a, ALL_PROVIDERS));
        assert!(check_acl(
            &Acl::read_unsafe(),
            perms::READ,
            &a,
            ALL_PROVIDERS
        ));
        assert!(!check_acl(
            &Acl::read_unsafe(),
            perms::WRITE,
            &a,
            ALL_PROVIDERS
        ));
        assert!(check_acl(
            &[acl(31, "ip", "127.0.0.1")],
            perms::WRITE,
            &a,
            ALL_PROVIDERS
        ));
        assert!(check_acl(
            &[acl(31, "ip", "127.0.0.0/8")],
            perms::WRITE,
            &a,
            ALL_PROVIDERS
        ));
        assert!(!check_acl(
            &[acl(31, "ip", "10.0.0.0/8")],
            perms::WRITE,
            &a,
            ALL_PROVIDERS
        ));
        assert!(check_acl(
            &[acl(31, "ip", "10.0.0.0/0")],
            perms::WRITE,
            &a,
            ALL_PROVIDERS
        ));
        let d = digest_id("user:pw");
        assert!(!check_acl(
            &[acl(31, "digest", &d)],
            perms::READ,
            &a,
            ALL_PROVIDERS
        ));
        let mut b = local();
        authenticate(&mut b, &AuthConfig::default(), "digest", b"user:pw").unwrap();
        assert!(check_acl(
            &[acl(31, "digest", &d)],
            perms::READ,
            &b,
            ALL_PROVIDERS
        ));
        let mut wrong = local();
        authenticate(&mut wrong, &AuthConfig::default(), "digest", b"user:bad").unwrap();
        assert!(!check_acl(
            &[acl(31, "digest", &d)],
            perms::READ,
            &wrong,
            ALL_PROVIDERS
        ));
        let s = AuthInfo::from_ids(vec![Id::new("super", "")]);
        assert!(check_acl(
            &[acl(1, "digest", &d)],
            perms::ADMIN,
            &s,
            ALL_PROVIDERS
        ));
    }

    #[test]
    fn forwarded_ids_keep_their_first_occurrence_in_order() {
        let ids = ["ip:1", "digest:a", "ip:1", "super:", "digest:a", "digest:b"]
            .map(|s| s.split_once(':').map(|(a, b)| Id::new(a, b)).unwrap());
        let a = AuthInfo::from_ids(ids.to_vec());
        let want = [&ids[0], &ids[1], &ids[3], &ids[5]].map(Clone::clone);
        assert_eq!(a.ids(), &want[..]);
        assert!(a.is_super());
        assert!(AuthInfo::from_ids(Vec::new()).ids().is_empty());
    }

    #[test]
    fn ipv6_masks() {
        let a = AuthInfo::new("fe80::1".parse().unwrap());
        assert!(check_acl(
            &[acl(1, "ip", "fe80::/16")],
            perms::READ,
            &a,
            ALL_PROVIDERS
        ));
        assert!(!check_acl(
            &[acl(1, "ip", "fe81::/16")],
            perms::READ,
            &a,
            ALL_PROVIDERS
        ));
        assert!(!check_acl(
            &[acl(1, "ip", "127.0.0.1")],
            perms::READ,
            &a,
            ALL_PROVIDERS
        ));
    }

    #[test]
    fn fixup_rules() {
        let a = local();
        assert_eq!(
            fixup_acl(None, &a, Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(Some(&[]), &a, Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(Some(&Acl::creator_all()), &a, Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        for bad in [
            acl(31, "world", "someone"),
            acl(31, "foo", "bar"),
            acl(31, "digest", "nocolon"),
            acl(31, "digest", "user:"),
            acl(31, "digest", "a:b:c"),
            acl(31, "ip", "300.0.0.1"),
            acl(31, "ip", "1.2.3.4/33"),
            acl(31, "ip", "host.example"),
        ] {
            assert_eq!(
                fixup_acl(Some(std::slice::from_ref(&bad)), &a, Providers::default()),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
        let open = Acl::open_unsafe();
        let dup = [open[0].clone(), open[0].clone()];
        assert_eq!(
            fixup_acl(Some(&dup), &a, Providers::default()),
            Ok(open.clone())
        );
        let mut b = local();
        authenticate(&mut b, &AuthConfig::default(), "digest", b"user:pw").unwrap();
        assert_eq!(
            fixup_acl(Some(&Acl::creator_all()), &b, Providers::default()),
            Ok(vec![acl(31, "digest", &digest_id("user:pw"))])
        );
        // Two digests: in the identity set's order, not the order added
        // (ZooKeeper 3.8.0 gave user:wrong's first for these two).
        let mut c = local();
        for pw in [&b"user:pass"[..], b"user:wrong"] {
            authenticate(&mut c, &AuthConfig::default(), "digest", pw).unwrap();
        }
        assert_eq!(
            fixup_acl(Some(&Acl::creator_all()), &c, Providers::default()),
            Ok(vec![
                acl(31, "digest", &digest_id("user:wrong")),
                acl(31, "digest", &digest_id("user:pass"))
            ])
        );
    }

    #[test]
    fn redaction() {
        let r = redact(&[acl(1, "digest", "user:abc"), acl(1, "ip", "1.2.3.4")]);
        assert_eq!(r[0].id.id, "user:x");
        assert_eq!(r[1].id.id, "1.2.3.4");
    }

    #[test]
    fn interning_shares_lists() {
        let mut c = AclCache::default();
        let x = c.intern(&Acl::open_unsafe());
        let y = c.intern(&Acl::open_unsafe());
        assert!(Arc::ptr_eq(&x, &y));
    }

    /// What Java 17's `new X500Principal(s)` accepted and refused, checked
    /// one by one (`X509AuthenticationProvider.isValid` is that call).
    #[test]
    fn distinguished_names_are_valid_where_java_parses_them() {
        let valid = [
            "",
            "CN=a",
            "CN=",
            "cn=a,o=b",
            "CN=a;O=b",
            "CN=a+OU=b",
            "CN=\"quoted, value\"",
            "CN=#0403616263",
            "2.5.4.3=x",
            "OID.2.5.4.3=x",
            "1.2=x",
            "CN=a=b",
            "CN=a\\,b",
            " CN = a ",
            "CN=a b ",
        ];
        let invalid = [
            "foo",
            "CN=a,",
            ",CN=a",
            "CN=a,,O=b",
            "CN=\"open",
            "CN=#123",
            "CN=#zz",
            "1..2=x",
            "X-Y=z",
            "9A=x",
            "CN=a\\",
            "CN=a<b",
            "UNKNOWNKW=x",
            "CN=a\"b",
        ];
        for dn in valid {
            assert!(distinguished_name_valid(dn), "{dn:?} is valid");
        }
        for dn in invalid {
            assert!(!distinguished_name_valid(dn), "{dn:?} is invalid");
        }
    }

    const X509_ONLY: Providers = Providers {
        x509: true,
        sasl: false,
    };

    /// With the x509 provider, `x509` ACLs are kept and `auth` expands to
    /// the connection's certificate identity; without it the scheme is
    /// unknown (-114), as in ZooKeeper.
    #[test]
    fn x509_acls_need_the_provider() {
        let mut auth = AuthInfo::new(IpAddr::from([127, 0, 0, 1]));
        auth.add(Id::new("x509", "CN=client"));
        let x509 = vec![Acl {
            perms: perms::ALL,
            id: Id::new("x509", "CN=client"),
        }];
        assert_eq!(
            fixup_acl(Some(&x509), &auth, Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(fixup_acl(Some(&x509), &auth, X509_ONLY), Ok(x509.clone()));
        let by_auth = vec![Acl {
            perms: perms::READ,
            id: Id::new("auth", ""),
        }];
        assert_eq!(
            fixup_acl(Some(&by_auth), &auth, Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(Some(&by_auth), &auth, X509_ONLY),
            Ok(vec![Acl {
                perms: perms::READ,
                id: Id::new("x509", "CN=client"),
            }])
        );
        assert!(check_acl(&x509, perms::READ, &auth, ALL_PROVIDERS));
        let other = AuthInfo::new(IpAddr::from([127, 0, 0, 1]));
        assert!(!check_acl(&x509, perms::READ, &other, ALL_PROVIDERS));
    }

    /// `sasl` ACLs need the SASL provider and a Kerberos-shaped name; a
    /// sasl user named `super` matches every sasl entry.
    #[test]
    fn sasl_acls_need_the_provider() {
        let sasl = Providers {
            x509: false,
            sasl: true,
        };
        let entry = |id: &str| Acl {
            perms: perms::ALL,
            id: Id::new("sasl", id),
        };
        let auth = AuthInfo::new(IpAddr::from([127, 0, 0, 1]));
        for ok in ["bob", "bob@EXAMPLE.COM", "zk/host@EXAMPLE.COM", ""] {
            assert!(fixup_acl(Some(&[entry(ok)]), &auth, sasl).is_ok(), "{ok:?}");
        }
        for bad in ["a@b@c", "a/b/c@R", "a@R/x"] {
            assert_eq!(
                fixup_acl(Some(&[entry(bad)]), &auth, sasl),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
        assert_eq!(
            fixup_acl(Some(&[entry("bob")]), &auth, Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        let mut bob = AuthInfo::new(IpAddr::from([127, 0, 0, 1]));
        bob.add(Id::new("sasl", "bob"));
        assert!(check_acl(&[entry("bob")], perms::READ, &bob, ALL_PROVIDERS));
        assert!(!check_acl(
            &[entry("alice")],
            perms::READ,
            &bob,
            ALL_PROVIDERS
        ));
        let mut root = AuthInfo::new(IpAddr::from([127, 0, 0, 1]));
        root.add(Id::new("sasl", "super"));
        assert!(check_acl(
            &[entry("alice")],
            perms::READ,
            &root,
            ALL_PROVIDERS
        ));
        // With the provider gone, its entries match no one.
        assert!(!check_acl(
            &[entry("bob")],
            perms::READ,
            &bob,
            Providers::default()
        ));
        let mut x509 = AuthInfo::new(IpAddr::from([127, 0, 0, 1]));
        x509.add(Id::new("x509", "CN=bob"));
        let cert_entry = [acl(31, "x509", "CN=bob")];
        assert!(check_acl(&cert_entry, perms::READ, &x509, ALL_PROVIDERS));
        assert!(!check_acl(
            &cert_entry,
            perms::READ,
            &x509,
            Providers::default()
        ));
    }
}
