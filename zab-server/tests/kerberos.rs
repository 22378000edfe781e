//! Kerberos for clients (SASL GSSAPI), end to end with ZooKeeper's own
//! `zkCli.sh` logging in from a keytab, against a KDC of the test's own
//! (MIT's `krb5kdc` on 127.0.0.1): the server's JAAS `Server` section logs
//! in with `Krb5LoginModule` as `zookeeper/localhost`, a client that
//! authenticates gets `sasl:<principal>` (or its short name under
//! `kerberos.removeRealmFromPrincipal`), `sasl` ACLs hold it to that, and a
//! server whose key is not the one the KDC issues tickets for refuses it.
//!
//! The client names the server `zookeeper/<host>`, with the host of
//! 127.0.0.1 canonicalized to `localhost` as its JVM resolves it.
//!
//! `ZAB_TEST_TARGET=zookeeper` runs the same against ZooKeeper 3.8 (which
//! takes the JAAS file and krb5.conf as JVM properties; the harness passes
//! them so).

mod support;

use std::path::{Path, PathBuf};

use support::kdc::{Kdc, REALM};
use support::zkcli::{self, assert_lines_in_order};
use support::TestServer;

fn jaas(dir: &Path, name: &str, section: &str, keytab: &Path, principal: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "{section} {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
         useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
         principal=\"{principal}@{REALM}\";\n}};\n",
        keytab.display()
    );
    std::fs::write(&path, text).expect("write JAAS file");
    path
}

/// A Kerberos server's zoo.cfg lines, and the flags of a client logged in
/// as `client`.
struct Realm {
    kdc: Kdc,
    dir: tempfile::TempDir,
    server_jaas: PathBuf,
}

impl Realm {
    fn new() -> Realm {
        let kdc = Kdc::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let keytab = kdc.keytab("zookeeper/localhost");
        let server_jaas = jaas(
            dir.path(),
            "server.jaas",
            "Server",
            &keytab,
            "zookeeper/localhost",
        );
        Realm {
            kdc,
            dir,
            server_jaas,
        }
    }

    fn server_cfg(&self, more: &str) -> String {
        format!(
            "java.security.auth.login.config={}\njava.security.krb5.conf={}\n\
             authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n{more}",
            self.server_jaas.display(),
            self.kdc.krb5_conf().display()
        )
    }

    fn client_flags(&self, principal: &str) -> Vec<String> {
        let keytab = self.kdc.keytab(principal);
        let jaas = jaas(
            self.dir.path(),
            &format!("{principal}.jaas"),
            "Client",
            &keytab,
            principal,
        );
        vec![
            format!("-Djava.security.auth.login.config={}", jaas.display()),
            format!(
                "-Djava.security.krb5.conf={}",
                self.kdc.krb5_conf().display()
            ),
        ]
    }
}

#[test]
fn zkcli_authenticates_with_kerberos_and_sasl_acls_hold() {
    let realm = Realm::new();
    let server = TestServer::start(&realm.server_cfg(""));
    let client = realm.client_flags("client");
    let output = zkcli::run(
        &server.connect_string(),
        "whoami\ncreate /krb mine\nsetAcl /krb sasl:client@ZAB.TEST:cdrwa\ngetAcl /krb\nget /krb",
        &client,
    );
    zkcli::assert_sasl_authenticated(&output);
    assert_lines_in_order(
        &output,
        &[
            "Auth scheme: User",
            "sasl: client@ZAB.TEST",
            "Created /krb",
            "'sasl,'client@ZAB.TEST",
            ": cdrwa",
            "mine",
        ],
    );
    // Without Kerberos the ACL keeps a client out; so it does another
    // principal.
    let anonymous = zkcli::run(&server.connect_string(), "get /krb", &[]);
    assert_lines_in_order(&anonymous, &["Insufficient permission : /krb"]);
    let other = realm.client_flags("other");
    let refused = zkcli::run(&server.connect_string(), "whoami\nget /krb", &other);
    assert_lines_in_order(
        &refused,
        &["sasl: other@ZAB.TEST", "Insufficient permission : /krb"],
    );
}

/// `kerberos.removeRealmFromPrincipal` (ZooKeeper's system property
/// `zookeeper.kerberos.removeRealmFromPrincipal`): the id is the short name.
#[test]
fn remove_realm_from_principal_gives_the_short_name() {
    let realm = Realm::new();
    let server = TestServer::start(&realm.server_cfg("kerberos.removeRealmFromPrincipal=true\n"));
    let output = zkcli::run(
        &server.connect_string(),
        "whoami",
        &realm.client_flags("client"),
    );
    assert_lines_in_order(&output, &["Auth scheme: User", "sasl: client"]);
    assert!(!output.contains("sasl: client@"), "{output}");
}

/// `security.auth_to_local` (ZooKeeper's `zookeeper.security.auth_to_local`):
/// the first rule that maps the principal gives the short name, the realm
/// is added back; a principal the rules do not map keeps its whole name.
#[test]
fn auth_to_local_rules_map_principals() {
    let realm = Realm::new();
    let server =
        TestServer::start(&realm.server_cfg(
            "security.auth_to_local=RULE:[1:$1@$0](client@ZAB.TEST)s/client@.*/mapped/\n",
        ));
    let mapped = zkcli::run(
        &server.connect_string(),
        "whoami",
        &realm.client_flags("client"),
    );
    assert_lines_in_order(&mapped, &["Auth scheme: User", "sasl: mapped@ZAB.TEST"]);
    let unmapped = zkcli::run(
        &server.connect_string(),
        "whoami",
        &realm.client_flags("other"),
    );
    assert_lines_in_order(&unmapped, &["Auth scheme: User", "sasl: other@ZAB.TEST"]);
}

/// The server's keytab is stale (its principal was given a new key after
/// the keytab was written), so it cannot read the client's ticket: the
/// client fails to authenticate and is not served as `sasl`.
#[test]
fn a_server_with_a_stale_key_refuses_the_client() {
    let realm = Realm::new();
    let server = TestServer::start(&realm.server_cfg(""));
    // Re-key the server's principal: the KDC now issues tickets the
    // server's keytab cannot decrypt.
    let _newer = realm.kdc.keytab("zookeeper/localhost");
    let output = zkcli::run(
        &server.connect_string(),
        "whoami",
        &realm.client_flags("client"),
    );
    assert!(
        zkcli::auth_failed(&output),
        "a ticket the server cannot read is AuthFailed:\n{output}"
    );
    assert!(!output.contains("sasl: client"), "{output}");
}
