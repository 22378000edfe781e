//! Test harness shared by the end-to-end compatibility tests: it owns one
//! server process per test, either the `zab-server` binary or a real Apache
//! ZooKeeper 3.8 (the Debian package), so every test can be proved against
//! ZooKeeper first and then run unchanged against zab.
//!
//! The target is chosen by the environment variable `ZAB_TEST_TARGET`:
//! `zab` (the default) or `zookeeper`.
//!
//! Each [`TestServer`] gets a fresh temporary directory holding its `zoo.cfg`,
//! its `dataDir` and the process's output, and a free port on 127.0.0.1. The
//! process is killed and the directory removed when the value is dropped.

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

use std::fs::{self, File};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod kdc;
// Also loaded by `cluster.rs`, which test binaries use without this module.
#[allow(clippy::duplicate_mod)]
mod ports;
pub mod raw;
pub mod zkcli;

/// How long a server gets to answer `ruok` after being spawned. A JVM on a
/// busy two-core machine can take several seconds.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Upper bound for any single end-to-end test body.
pub const TEST_DEADLINE: Duration = Duration::from_secs(120);

/// Which server implementation the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The `zab-server` binary of this package.
    Zab,
    /// Apache ZooKeeper 3.8 from the Debian package.
    ZooKeeper,
}

/// The target selected by `ZAB_TEST_TARGET` (`zab` when unset).
pub fn target() -> Target {
    match std::env::var("ZAB_TEST_TARGET").as_deref() {
        Ok("zookeeper") | Ok("zk") => Target::ZooKeeper,
        Ok("zab") | Ok("") | Err(_) => Target::Zab,
        Ok(other) => panic!("ZAB_TEST_TARGET must be `zab` or `zookeeper`, not {other:?}"),
    }
}

/// One running server (or a stopped one that can be restarted) with its own
/// directory and port.
pub struct TestServer {
    target: Target,
    dir: TempDir,
    cfg_path: PathBuf,
    port: u16,
    child: Option<Child>,
    /// How many times the process has been spawned; each run logs to its own file.
    runs: u32,
}

impl TestServer {
    /// Writes a `zoo.cfg` and starts the selected server, returning once it
    /// answers `ruok` with `imok` and `srvr` says it serves requests.
    ///
    /// `extra_cfg` holds additional `key=value` lines; a key given there
    /// replaces the harness default for the same key (e.g. `tickTime=200`).
    pub fn start(extra_cfg: &str) -> TestServer {
        TestServer::start_target(target(), extra_cfg)
    }

    /// As [`TestServer::start`], for `target` whatever `ZAB_TEST_TARGET`
    /// says (the differential tests run both).
    pub fn start_target(target: Target, extra_cfg: &str) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("zab-compat-")
            .tempdir()
            .expect("create temp dir");
        let port = free_port();
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir).expect("create dataDir");
        let cfg = render_cfg(&data_dir, port, extra_cfg);
        let cfg_path = dir.path().join("zoo.cfg");
        fs::write(&cfg_path, cfg).expect("write zoo.cfg");
        let mut server = TestServer {
            target,
            dir,
            cfg_path,
            port,
            child: None,
            runs: 0,
        };
        server.spawn_and_wait();
        server
    }

    /// The implementation this server runs.
    pub fn target(&self) -> Target {
        self.target
    }

    /// `127.0.0.1:PORT`, as ZooKeeper clients expect it.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's `zoo.cfg`.
    pub fn cfg_path(&self) -> &Path {
        &self.cfg_path
    }

    /// The server's `dataDir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The process id of the running server, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no chance to flush or say goodbye) and
    /// reaps it. Its directory and data stay for [`TestServer::restart`].
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same directory and port (killing it
    /// first if it still runs) and waits until it answers `ruok`.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn_and_wait();
    }

    /// Sends a four-letter word and returns the whole answer (the server
    /// closes the connection after answering).
    pub fn four_letter_word(&self, word: &str) -> std::io::Result<String> {
        four_letter_word(self.addr(), word)
    }

    /// The output the server process wrote so far (all runs), for failure messages.
    pub fn output(&self) -> String {
        let mut all = String::new();
        for run in 1..=self.runs {
            if let Ok(text) = fs::read_to_string(self.log_path(run)) {
                all.push_str(&format!("--- run {run} ---\n{text}"));
            }
        }
        all
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("server-{run}.log"))
    }

    fn spawn_and_wait(&mut self) {
        self.runs += 1;
        let log = File::create(self.log_path(self.runs)).expect("create server log");
        let log_err = log.try_clone().expect("clone log handle");
        let mut cmd = server_command(self.target, self.dir.path(), &self.cfg_path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?} server: {e}", self.target));
        self.child = Some(child);

        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self.is_serving() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "{:?} server exited during start-up with {status}\n{}",
                        self.target,
                        self.output()
                    );
                }
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "{:?} server did not answer ruok within {START_DEADLINE:?}\n{}",
                    self.target,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl TestServer {
    /// `ruok` answers `imok` as soon as the client port listens, but
    /// ZooKeeper may still be loading its database and closes new sessions
    /// until then; `srvr` says so explicitly (reference E), so both must pass.
    fn is_serving(&self) -> bool {
        let ruok = self.four_letter_word("ruok");
        if !matches!(ruok.as_deref(), Ok("imok")) {
            return false;
        }
        match self.four_letter_word("srvr") {
            Ok(text) => !text.is_empty() && !text.contains("not currently serving requests"),
            Err(_) => false,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Settings every test server gets; `extra_cfg` may override any of them.
fn render_cfg(data_dir: &Path, port: u16, extra_cfg: &str) -> String {
    let mut entries: Vec<(String, String)> = vec![
        // Short ticks keep session timeouts (clamped to [2, 20] ticks) and
        // expiry checks fast.
        ("tickTime".into(), "500".into()),
        ("dataDir".into(), data_dir.display().to_string()),
        ("clientPort".into(), port.to_string()),
        ("clientPortAddress".into(), "127.0.0.1".into()),
        ("4lw.commands.whitelist".into(), "*".into()),
        // ZooKeeper's admin server would bind 8080 for every test server.
        ("admin.enableServer".into(), "false".into()),
    ];
    for line in extra_cfg.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("extra_cfg line {line:?} is not key=value"));
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }
    entries
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// zoo.cfg keys that ZooKeeper only reads as JVM system properties under
/// their own name (not `zookeeper.<key>`); the harness passes them with `-D`
/// so one zoo.cfg drives both targets.
const JVM_ONLY_KEYS: &[&str] = &[
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "jute.maxbuffer",
    // zab reads them from zoo.cfg; for ZooKeeper they are JVM properties.
    "java.security.auth.login.config",
    "java.security.krb5.conf",
];

/// The command that runs `target` on `cfg`, its logs under `dir`.
pub fn server_command(target: Target, dir: &Path, cfg: &Path) -> Command {
    match target {
        Target::Zab => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_zab-server"));
            cmd.arg(cfg);
            cmd
        }
        Target::ZooKeeper => zookeeper_command(dir, cfg),
    }
}

/// The JVM command line the Debian scripts would build, run directly so that
/// the child we hold is the JVM itself (`kill9` must hit the server, not a
/// shell). `zookeeper.jar`'s manifest names the rest of the class path.
/// Other unknown zoo.cfg keys (e.g. `extendedTypesEnabled`, `snapCount`,
/// `4lw.commands.whitelist`) become `zookeeper.*` system properties inside
/// `QuorumPeerConfig` itself (reference H), so they need no `-D` here.
fn zookeeper_command(dir: &Path, cfg: &Path) -> Command {
    let text = fs::read_to_string(cfg).expect("read zoo.cfg");
    let mut cmd = Command::new("java");
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            if JVM_ONLY_KEYS.contains(&key.trim()) {
                cmd.arg(format!("-D{}={}", key.trim(), value.trim()));
            }
        }
    }
    cmd.arg("-Xmx256m")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
        .arg("-Dzookeeper.root.logger=WARN,CONSOLE")
        .arg("-cp")
        // With the Netty jars its TLS port needs, only for a TLS port: with
        // them on every run, bad_input's maxClientCnxns test failed 3 runs
        // of 4 against ZooKeeper (a write to a held connection found it
        // closed) and passes without them; the cause was not pinned down.
        .arg(
            match (
                text.contains("secureClientPort"),
                text.contains("admin.enableServer=true"),
            ) {
                (true, _) => zkcli::NETTY_CLASS_PATH.to_owned(),
                (false, true) => ADMIN_CLASS_PATH.to_owned(),
                (false, false) => "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar".to_owned(),
            },
        )
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(cfg);
    cmd
}

/// ZooKeeper's class path with the servlet API its AdminServer needs:
/// Debian's `zookeeper.jar` manifest names Jetty's jars but not
/// `servlet-api.jar` (package libservlet-api-java, which Jetty's package
/// pulls in), so without it ZooKeeper falls back to its `DummyAdminServer`
/// and serves no HTTP at all.
pub const ADMIN_CLASS_PATH: &str =
    "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/servlet-api.jar";

/// Runs a client program of another project (kazoo, Curator) against
/// `server` for one scenario: it must exit 0 within `within` and print
/// `ok <scenario>`; otherwise the test fails with the program's output and
/// the server's log. The program is killed if it overruns.
pub fn run_client_scenario(
    mut program: Command,
    scenario: &str,
    server: &TestServer,
    within: Duration,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("out");
    let out = File::create(&log).expect("client log");
    let mut child = program
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("client log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("run {program:?}: {e}"));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scenario {scenario} still running after {within:?}\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success() && output.contains(&format!("ok {scenario}")),
        "scenario {scenario} failed ({status}):\n{output}\n--- server log ---\n{}",
        server.output()
    );
}

/// A port on 127.0.0.1 that is free now, outside the kernel's ephemeral
/// range: a server restarted on it (after `kill -9`) cannot find it taken
/// as the source port of some outgoing connection in between.
pub fn free_port() -> u16 {
    ports::free_ports(1)[0]
}

/// Sends a four-letter word to `addr` and reads the answer until the server
/// closes the connection.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Runs `fut` with the per-test deadline, failing the test if it is exceeded.
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_DEADLINE, fut).await {
        Ok(value) => value,
        Err(_) => panic!("test exceeded its deadline of {TEST_DEADLINE:?}"),
    }
}

/// Connects to `connect_string` with the Rust `zookeeper-client`, retrying
/// until a server grants a session; panics after `within`.
pub async fn connect_until(
    connect_string: &str,
    session_timeout: Duration,
    within: Duration,
) -> zookeeper_client::Client {
    let deadline = Instant::now() + within;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(10),
            zookeeper_client::Client::connector()
                .with_session_timeout(session_timeout)
                .connect(connect_string),
        )
        .await;
        match attempt {
            Ok(Ok(client)) => return client,
            Ok(Err(e)) if Instant::now() > deadline => panic!("connect to {connect_string}: {e}"),
            Err(_) if Instant::now() > deadline => panic!("connect to {connect_string}: timed out"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Writes `path` holding `data` through the server at `writer` and reads
/// it back, after a sync, through each server in `readers`: the same data
/// and Stat everywhere. Connections retry for `within`.
pub async fn replicates(
    writer: &str,
    readers: &[String],
    path: &str,
    data: &[u8],
    within: Duration,
) {
    let session = Duration::from_secs(4);
    let client = connect_until(writer, session, within).await;
    let (stat, _) = client
        .create(
            path,
            data,
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::anyone_all()),
        )
        .await
        .unwrap();
    for reader in readers {
        let client = connect_until(reader, session, within).await;
        client.sync(path).await.unwrap();
        let (seen, seen_stat) = client.get_data(path).await.unwrap();
        assert_eq!(
            (seen.as_slice(), seen_stat),
            (data, stat),
            "through {reader}"
        );
    }
}

/// Polls `check` every 25 ms until it returns `Some`, or panics with `what`
/// once `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
