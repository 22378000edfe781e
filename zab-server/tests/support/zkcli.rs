//! Apache ZooKeeper's own command-line client, Debian's `zkCli.sh`, driven
//! non-interactively: commands fed on stdin, one JVM per batch, its printed
//! output returned for the test to check.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// A zkCli batch starts a JVM, connects, runs its commands and quits.
const ZKCLI_DEADLINE: Duration = Duration::from_secs(90);

/// The class path Debian's `zkEnv.sh` gives, plus the two Netty jars that
/// `zookeeper.jar`'s manifest leaves out and that ZooKeeper's Netty
/// connections (and so TLS) need: without them a Netty client or server
/// fails with `NoClassDefFoundError` (checked on Debian 12's 3.8.0).
pub const NETTY_CLASS_PATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:\
     /usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar";

/// Runs `commands` (one per line) in one zkCli session against `servers`
/// (a connect string) and returns what it printed (stdout and stderr
/// interleaved, as a user would see them). `jvm_flags` go into
/// `CLIENT_JVMFLAGS`, which `zkCli.sh` puts after its own class path, so a
/// `-cp` there replaces it.
pub fn run(servers: &str, commands: &str, jvm_flags: &[String]) -> String {
    run_with(&[], servers, commands, jvm_flags)
}

/// As [`run`], with `options` before `-server` (`-r`: a read-only server
/// will do).
pub fn run_with(options: &[&str], servers: &str, commands: &str, jvm_flags: &[String]) -> String {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_path = out_dir.path().join("zkcli.out");
    let out = File::create(&out_path).expect("create output file");
    let err = out.try_clone().expect("clone output handle");
    let mut child = Command::new(ZKCLI)
        .args(options)
        .arg("-server")
        .arg(servers)
        .env("CLIENT_JVMFLAGS", jvm_flags.join(" "))
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

/// Asserts that zkCli's session finished its SASL exchange. zkCli prints
/// the SaslAuthenticated event from its event thread, so the line may come
/// after the answer to a command typed first (`whoami`'s, seen once in a
/// full test run); the client itself sends no request before the exchange
/// ends (`ClientCnxn.SendThread.tunnelAuthInProgress`).
pub fn assert_sasl_authenticated(output: &str) {
    let event = "WatchedEvent state:SaslAuthenticated type:None path:null";
    assert!(
        output.lines().any(|line| line.trim_end() == event),
        "no SaslAuthenticated event in zkCli output:\n{output}"
    );
}

/// Whether zkCli's session failed to authenticate: the AuthFailed event
/// (printed by its event thread, which may not get to it before zkCli
/// exits) or a command's `KeeperErrorCode = AuthFailed` (printed by the
/// main thread when the session failed before the command's answer).
pub fn auth_failed(output: &str) -> bool {
    output.lines().any(|line| {
        let line = line.trim_end();
        line == "WatchedEvent state:AuthFailed type:None path:null"
            || line.starts_with("KeeperErrorCode = AuthFailed")
    })
}

/// Asserts that `expected` lines appear in `output`, in this order (other
/// lines may come between them).
pub fn assert_lines_in_order(output: &str, expected: &[&str]) {
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
