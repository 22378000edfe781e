//! End-to-end compatibility with Apache ZooKeeper's own command-line client,
//! Debian's `zkCli.sh`, driven non-interactively (commands fed on stdin, one
//! JVM per batch) and checked on its printed output.
//!
//! Runs against zab by default, or against Apache ZooKeeper 3.8 with
//! `ZAB_TEST_TARGET=zookeeper` (see `tests/support/mod.rs`).

mod support;

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::TestServer;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// A zkCli batch starts a JVM, connects, runs its commands and quits.
const ZKCLI_DEADLINE: Duration = Duration::from_secs(90);

/// Runs `commands` (one per line) in one zkCli session and returns what it
/// printed (stdout and stderr interleaved, as a user would see them).
fn zkcli(server: &TestServer, commands: &str) -> String {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_path = out_dir.path().join("zkcli.out");
    let out = File::create(&out_path).expect("create output file");
    let err = out.try_clone().expect("clone output handle");
    let mut child = Command::new(ZKCLI)
        .arg("-server")
        .arg(server.connect_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn zkCli.sh");
    {
        let mut stdin = child.stdin.take().expect("zkCli stdin");
        stdin
            .write_all(format!("{commands}\nquit\n").as_bytes())
            .expect("write zkCli commands");
    }
    let deadline = Instant::now() + ZKCLI_DEADLINE;
    loop {
        // The exit status is not checked: zkCli exits with 1 when its last
        // command failed, and several batches end with an expected failure.
        if child.try_wait().expect("wait for zkCli").is_some() {
            return std::fs::read_to_string(&out_path).expect("read zkCli output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            panic!("zkCli did not finish within {ZKCLI_DEADLINE:?}:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Asserts that `expected` lines appear in `output`, in this order (other
/// lines may come between them).
fn assert_lines_in_order(output: &str, expected: &[&str]) {
    let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    let mut from = 0;
    for want in expected {
        match lines[from..].iter().position(|line| line == want) {
            Some(at) => from += at + 1,
            None => panic!("line {want:?} missing (after line {from}) in zkCli output:\n{output}"),
        }
    }
    assert!(
        !output.contains("Exception"),
        "zkCli reported an exception:\n{output}"
    );
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
