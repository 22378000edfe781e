//! End-to-end compatibility with Apache ZooKeeper's own command-line client,
//! Debian's `zkCli.sh`, driven non-interactively (commands fed on stdin, one
//! JVM per batch) and checked on its printed output.
//!
//! Runs against zab by default, or against Apache ZooKeeper 3.8 with
//! `ZAB_TEST_TARGET=zookeeper` (see `tests/support/mod.rs`).

mod support;

use support::zkcli::{self, assert_lines_in_order};
use support::TestServer;

/// Runs `commands` (one per line) in one zkCli session and returns what it
/// printed.
fn zkcli(server: &TestServer, commands: &str) -> String {
    zkcli::run(&server.connect_string(), commands, &[])
}

/// The value of `key = value` stat lines, in order of appearance.
fn stat_values<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key} = ");
    output
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn zkcli_crud_ephemeral_sequential() {
    let server = TestServer::start("");
    let output = zkcli(
        &server,
        "create /cli hello
get /cli
set /cli world
get -s /cli
set -v 0 /cli stale
create /cli/a one
create /cli/b two
ls /cli
stat /cli
create -e /cli/eph e
create -s /cli/seq- s
create -s /cli/seq- s
create -e -s /cli/eseq- x
ls /cli
stat /cli/eph
delete /cli/a
ls /cli
delete /cli
create /cli x
get /missing
deleteall /cli
ls /cli
create /cli-gone x
delete /cli-gone
stat /cli-gone",
    );
    assert_lines_in_order(
        &output,
        &[
            "Created /cli",
            "hello",
            "world",
            "dataVersion = 1",
            "dataLength = 5",
            "numChildren = 0",
            "version No is not valid : /cli",
            "Created /cli/a",
            "Created /cli/b",
            "[a, b]",
            "cversion = 2",
            "dataVersion = 1",
            "numChildren = 2",
            "Created /cli/eph",
            // Behaviour 1: the suffix counts every child created so far.
            "Created /cli/seq-0000000003",
            "Created /cli/seq-0000000004",
            "Created /cli/eseq-0000000005",
            "[a, b, eph, eseq-0000000005, seq-0000000003, seq-0000000004]",
            "[b, eph, eseq-0000000005, seq-0000000003, seq-0000000004]",
            "Node not empty: /cli",
            "Node already exists: /cli",
            "Node does not exist: /missing",
            "Node does not exist: /cli",
            "Created /cli-gone",
            "Node does not exist: /cli-gone",
        ],
    );
    // `get -s /cli` and `stat /cli` show a persistent node; `stat /cli/eph`
    // shows its owner session.
    let owners = stat_values(&output, "ephemeralOwner");
    assert_eq!(owners.len(), 3, "{output}");
    assert_eq!(&owners[..2], ["0x0", "0x0"]);
    assert_ne!(owners[2], "0x0", "ephemeral without owner:\n{output}");
    // The data version of `get -s` after one set, and the failed set changed nothing.
    let versions = stat_values(&output, "dataVersion");
    assert_eq!(versions[..2], ["1", "1"]);
}

#[test]
fn zkcli_acl_and_digest_auth() {
    let server = TestServer::start("");
    let owner = zkcli(
        &server,
        "addauth digest alice:secret
create /secure gold auth:alice:secret:cdrwa
getAcl /secure
get /secure
create -e /owner-eph x
create /open x
setAcl /open world:anyone:r
getAcl /open
set /open y
getAcl -s /open
create /plain p
setAcl /plain digest:bob:bobhash:rw
getAcl /plain",
    );
    assert_lines_in_order(
        &owner,
        &[
            "Created /secure",
            // base64(sha1("alice:secret")), reference D.9.
            "'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
            ": cdrwa",
            "gold",
            "Created /owner-eph",
            "Created /open",
            "'world,'anyone",
            ": r",
            "Insufficient permission : /open",
            "'world,'anyone",
            ": r",
            // Behaviour 5: setACL changes only aversion.
            "dataVersion = 0",
            "aclVersion = 1",
            "Created /plain",
            // Behaviour 43: reading the ACL needs READ or ADMIN.
            "Insufficient permission : /plain",
        ],
    );

    let stranger = zkcli(
        &server,
        "get /secure
getAcl /secure
set /secure x
stat /secure
stat /owner-eph
addauth digest alice:wrong
get /secure
addauth digest alice:secret
get /secure",
    );
    assert_lines_in_order(
        &stranger,
        &[
            "Insufficient permission : /secure",
            "Insufficient permission : /secure",
            "Insufficient permission : /secure",
            // Behaviour 42: exists/stat is never ACL-checked.
            "dataLength = 4",
            // Behaviour 34: the owner's `quit` closed its session, which
            // removed its ephemeral at once.
            "Node does not exist: /owner-eph",
            // Behaviour 45: a wrong password "succeeds" but grants nothing.
            "Insufficient permission : /secure",
            "gold",
        ],
    );
}
