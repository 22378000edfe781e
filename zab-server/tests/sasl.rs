//! SASL DIGEST-MD5 end to end, with ZooKeeper's own `zkCli.sh` as the
//! client: users come from the JAAS file's `Server` section, a session
//! that authenticates gets `sasl:<user>`, `sasl` ACLs hold it to that, and
//! a wrong password fails the connection.
//!
//! `ZAB_TEST_TARGET=zookeeper` runs the same against ZooKeeper 3.8 (which
//! takes the JAAS file as a JVM property; the harness passes it so).

mod support;

use std::path::{Path, PathBuf};

use support::zkcli::{self, assert_lines_in_order};
use support::TestServer;

const SERVER_JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
"#;

/// A client JAAS file for `user` with `password` in `dir`.
fn client_jaas(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join(format!("client-{user}-{password}.jaas"));
    let text = format!(
        "Client {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         username=\"{user}\"\n    password=\"{password}\";\n}};\n"
    );
    std::fs::write(&path, text).expect("write client JAAS");
    path
}

fn flags(jaas: &Path) -> Vec<String> {
    vec![format!(
        "-Djava.security.auth.login.config={}",
        jaas.display()
    )]
}

#[test]
fn zkcli_authenticates_with_digest_md5_and_sasl_acls_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server_jaas = dir.path().join("server.jaas");
    std::fs::write(&server_jaas, SERVER_JAAS).expect("write server JAAS");
    let server = TestServer::start(&format!(
        "java.security.auth.login.config={}\n\
         authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
        server_jaas.display()
    ));
    let bob = flags(&client_jaas(dir.path(), "bob", "bobsecret"));
    let output = zkcli::run(
        &server.connect_string(),
        "whoami\ncreate /sasl mine\nsetAcl /sasl sasl:bob:cdrwa\ngetAcl /sasl\nget /sasl",
        &bob,
    );
    zkcli::assert_sasl_authenticated(&output);
    assert_lines_in_order(
        &output,
        &[
            "Auth scheme: User",
            "sasl: bob",
            "Created /sasl",
            "'sasl,'bob",
            ": cdrwa",
            "mine",
        ],
    );

    // Without SASL the ACL keeps a client out.
    let anonymous = zkcli::run(&server.connect_string(), "get /sasl", &[]);
    assert_lines_in_order(&anonymous, &["Insufficient permission : /sasl"]);

    // A wrong password fails the connection.
    let wrong = flags(&client_jaas(dir.path(), "bob", "guess"));
    let refused = zkcli::run(&server.connect_string(), "get /sasl", &wrong);
    assert!(
        zkcli::auth_failed(&refused),
        "a wrong password is AuthFailed:\n{refused}"
    );
    assert!(!refused.lines().any(|l| l == "mine"), "{refused}");
}

/// `enforce.auth.enabled` (ZooKeeper's `AuthenticationHelper`): a request
/// from a connection without an id of an enforced scheme is answered with
/// SESSIONCLOSEDREQUIRESASLAUTH and the connection closes; `addauth`
/// first lets the same requests through.
#[test]
fn enforced_auth_closes_connections_that_have_not_authenticated() {
    let server = TestServer::start("enforce.auth.enabled=true\nenforce.auth.schemes=digest\n");
    let anonymous = zkcli::run(&server.connect_string(), "ls /", &[]);
    assert!(
        !anonymous.lines().any(|l| l == "[zookeeper]"),
        "served without authentication:\n{anonymous}"
    );
    assert_lines_in_order(
        &anonymous,
        &["KeeperErrorCode = Session closed because client failed to authenticate for /"],
    );
    let authenticated = zkcli::run(
        &server.connect_string(),
        "addauth digest user:pw\nls /",
        &[],
    );
    assert_lines_in_order(&authenticated, &["[zookeeper]"]);
}
