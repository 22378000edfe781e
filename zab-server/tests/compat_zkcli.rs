//! End-to-end compatibility with Apache ZooKeeper's own command-line client,
//! Debian's `zkCli.sh`, driven non-interactively (commands fed on stdin, one
//! JVM per batch) and checked on its printed output.
//!
//! Runs against zab by default, or against Apache ZooKeeper 3.8 with
//! `ZAB_TEST_TARGET=zookeeper` (see `tests/support/mod.rs`).

mod support;

use support::zkcli::{self, assert_lines_in_order};
use support::{Target, TestServer};

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
    // `stat` of a node the stranger may not read: refused since ZooKeeper
    // 3.8.4 (ZOOKEEPER-2590), as by zab; Debian's 3.8.0 answered it
    // (behaviour 42).
    let stat_secure = match server.target() {
        Target::Zab => "Insufficient permission : /secure",
        Target::ZooKeeper => "dataLength = 4",
    };
    assert_lines_in_order(
        &stranger,
        &[
            "Insufficient permission : /secure",
            "Insufficient permission : /secure",
            "Insufficient permission : /secure",
            stat_secure,
            // Behaviour 34: the owner's `quit` closed its session, which
            // removed its ephemeral at once.
            "Node does not exist: /owner-eph",
            // Behaviour 45: a wrong password "succeeds" but grants nothing.
            "Insufficient permission : /secure",
            "gold",
        ],
    );
}

/// Quotas as zkCli sets and reads them: the server counts a quota's
/// subtree into its stats node from the moment zkCli creates it, follows
/// every write below, and with `enforceQuota=true` refuses writes past a
/// hard limit; `mntr` adds them up by namespace. Checked on ZooKeeper
/// 3.8.0, which printed the same to the byte (ctime and mtime aside).
#[test]
fn zkcli_quotas_count_usage_and_enforce_hard_limits() {
    let server = TestServer::start("enforceQuota=true");
    let output = zkcli(
        &server,
        "create /q a
create /q/x bcd
setquota -n 5 /q
listquota /q
get -s /zookeeper/quota/q/zookeeper_stats
create /q/y 12345
setquota -N 4 /q
setquota -B 20 /q
listquota /q
create /q/z 1
create /q/w 1
set /q/x 12345678901234567890
create /q/z/deeper
get -s /zookeeper/quota/q/zookeeper_stats
create /r
create /r/s
setquota -b 3 /r/s
create /r/s/t four
listquota /r/s",
    );
    assert_lines_in_order(
        &output,
        &[
            "Created /q/x",
            "absolute path is /zookeeper/quota/q/zookeeper_limits",
            "Output quota for /q count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            // zkCli wrote `count=0,bytes=0`; the server counted /q and /q/x.
            "Output stat for /q count=2,bytes=4",
            "count=2,bytes=4",
            "dataVersion = 0",
            "dataLength = 15",
            "Created /q/y",
            "Output quota for /q count=5,bytes=-1=;byteHardLimit=20;countHardLimit=4",
            "Output stat for /q count=3,bytes=9",
            "Created /q/z",
            "Quota has exceeded : /q/w",
            "Quota has exceeded : /q/x",
            "Quota has exceeded : /q/z/deeper",
            // Rewritten in place: still version 0, one byte longer.
            "count=4,bytes=10",
            "dataVersion = 0",
            "dataLength = 16",
            "Created /r/s",
            // A soft limit only: the create past it succeeds.
            "Created /r/s/t",
            "Output quota for /r/s count=-1,bytes=3=;byteHardLimit=-1;countHardLimit=-1",
            "Output stat for /r/s count=2,bytes=4",
        ],
    );
    let mntr = server.four_letter_word("mntr").expect("mntr");
    // ZooKeeper prints its metrics in hash order.
    let mut quota: Vec<&str> = mntr.lines().filter(|l| l.contains("quota")).collect();
    quota.sort_unstable();
    assert_eq!(
        quota,
        [
            "zk_q_quota_bytes_limit_per_namespace\t20",
            "zk_q_quota_bytes_usage_per_namespace\t10",
            "zk_q_quota_count_limit_per_namespace\t4",
            "zk_q_quota_count_usage_per_namespace\t4",
            "zk_q_quota_exceeded_error_per_namespace\t3",
            "zk_r_quota_bytes_limit_per_namespace\t3",
            "zk_r_quota_bytes_usage_per_namespace\t4",
            "zk_r_quota_count_limit_per_namespace\t-1",
            "zk_r_quota_count_usage_per_namespace\t2",
        ]
    );
}

/// The rest of zkCli's commands, each as ZooKeeper 3.8.0 answers it
/// (checked: the whole output was the same on both systems, times and
/// ids aside).
#[test]
fn zkcli_other_commands_print_what_zookeeper_prints() {
    let server = TestServer::start("extendedTypesEnabled=true");
    let output = zkcli(
        &server,
        "create /m one
create /m/a 1
create /m/a/b 2
create -e /m/e eph
create -c /m/cont c
create -t 60000 /m/ttl t
create -s -e /m/se- x
getAllChildrenNumber /m
getAllChildrenNumber /
getEphemerals /m
ls -R /m
ls -s /m
stat -w /m
get -w /m/a
set /m/a 11
addWatch -m PERSISTENT_RECURSIVE /m
create /m/a/c 3
removewatches /m
sync /m
version
whoami
ls /zookeeper
deleteall -b 2 /m/a
ls /m
delete -v 5 /m
set -s /m two
stat /m/missing
create -s /m/seq
create /m/bad/child x
delete /
close
ls /m",
    );
    assert_lines_in_order(
        &output,
        &[
            "Created /m/se-0000000004",
            // getAllChildrenNumber: the descendants, not the node.
            "6",
            "10",
        ],
    );
    // ZooKeeper lists a session's ephemerals in its `HashSet`'s order.
    assert!(output.contains("[/m/se-0000000004, /m/e]"), "{output}");
    assert_lines_in_order(
        &output,
        &[
            // ls -R: breadth first.
            "/m",
            "/m/a",
            "/m/cont",
            "/m/e",
            "/m/se-0000000004",
            "/m/ttl",
            "/m/a/b",
            "[a, cont, e, se-0000000004, ttl]",
            "cversion = 5",
            "numChildren = 5",
            "1",
            "Created /m/a/c",
            "Sync is OK",
            "Auth scheme: User",
            "ip: 127.0.0.1",
            "[config, quota]",
            "[cont, e, se-0000000004, ttl]",
            "version No is not valid : /m",
            "dataVersion = 1",
            "numChildren = 4",
            "Node does not exist: /m/missing",
            // A delete does not move the parent's cversion.
            "Created /m/seq0000000005",
            "Node does not exist: /m/bad/child",
            "Arguments are not valid : /",
            "Not connected",
        ],
    );
    // The watcher prints events from its own thread, so they interleave
    // with the commands' output in no fixed order. (Not `state:Closed`,
    // which the client makes itself on `close` and may not print before
    // zkCli exits.)
    for event in [
        "state:SyncConnected type:NodeDataChanged path:/m/a",
        "state:SyncConnected type:NodeCreated path:/m/a/c",
        "state:SyncConnected type:PersistentWatchRemoved path:/m",
        "state:SyncConnected type:DataWatchRemoved path:/m",
    ] {
        let line = format!("WatchedEvent {event}");
        assert!(output.lines().any(|l| l == line), "{event}: {output}");
    }
}

/// Quotas at their edges, as zkCli and ZooKeeper 3.8.0 handle them (the
/// output and mntr's quota, size and count lines were the same on both):
/// nested quotas refused, partial `delquota`, a hard limit set below the
/// usage, and a stats node whose ACL no client may write is still kept.
#[test]
fn zkcli_quota_edges() {
    let server = TestServer::start("enforceQuota=true");
    let output = zkcli(
        &server,
        "create /p a
create /p/q b
create /p/q/r c
setquota -n 10 /p/q
setquota -n 5 /p
setquota -n 5 /p/q/r
setquota -b 100 /nothere
setquota -n 3 /zookeeper/quota/p
setquota -n 0 /p/q
setquota -B 8 /p/q
listquota /p/q
delquota -n /p/q
listquota /p/q
delquota -B /p/q
listquota /p/q
delquota /p/q
listquota /p/q
delquota /p/q
listquota /nothere
create /p/q/s x
setquota -N 2 /p
ls -R /zookeeper/quota
get /zookeeper/quota/p/zookeeper_stats
create /p/t x
create /p/u x
delete /p/q/r
get /zookeeper/quota/p/zookeeper_stats
setAcl /zookeeper/quota/p/zookeeper_stats world:anyone:r
create /p/v x
get /zookeeper/quota/p/zookeeper_stats",
    );
    assert_lines_in_order(
        &output,
        &[
            "Created /p/q/r",
            "/p has a child /p/q which has a quota",
            "/p/q/r has a parent /p/q which has a quota",
            "/nothere does not exist.",
            "cannot set a quota under the path: /zookeeper/quota",
            "the num quota must be greater than zero",
            "Output quota for /p/q count=10,bytes=-1=;byteHardLimit=8;countHardLimit=-1",
            "Output stat for /p/q count=2,bytes=2",
            "Output quota for /p/q count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=-1",
            "Output stat for /p/q count=2,bytes=2",
            "Output quota for /p/q count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            "quota for /p/q does not exist.",
            "Quota does not exist for /p/q",
            "quota for /nothere does not exist.",
            "Created /p/q/s",
            "[Warning]: the count quota you create is less than the existing count:4",
            "/zookeeper/quota/p/zookeeper_stats",
            "count=4,bytes=4",
            "Quota has exceeded : /p/t",
            "Quota has exceeded : /p/u",
            "count=3,bytes=3",
            "Quota has exceeded : /p/v",
            "count=3,bytes=3",
        ],
    );
    let mntr = server.four_letter_word("mntr").expect("mntr");
    let mut lines: Vec<&str> = mntr
        .lines()
        .filter(|l| l.contains("quota") || l.starts_with("zk_approximate_data_size"))
        .collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "zk_approximate_data_size\t213",
            "zk_p_quota_bytes_limit_per_namespace\t-1",
            "zk_p_quota_bytes_usage_per_namespace\t3",
            "zk_p_quota_count_limit_per_namespace\t2",
            "zk_p_quota_count_usage_per_namespace\t3",
            "zk_p_quota_exceeded_error_per_namespace\t3",
        ]
    );
}
