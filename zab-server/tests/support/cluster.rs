//! A replicated ensemble of real `zab-server` processes on 127.0.0.1, for the
//! replication tests (`tests/replication.rs`) and the failover measurement
//! tool (`examples/failover.rs`).
//!
//! [`TestCluster`] owns one temporary directory per ensemble; each node gets
//! its own `zoo.cfg`, `dataDir/myid`, process log per run, and three free
//! ports (client, quorum, election). With
//! [`ClusterSpec::with_distinct_hosts`] node `i` also gets its own loopback
//! address, 127.0.0.(i+1), for its quorum and election ports, so that every
//! node can listen on one shared port (e.g. `observerMasterPort`). Nodes
//! are started, killed with SIGKILL, stopped with SIGTERM and restarted
//! individually; the state of the ensemble is read only through the
//! four-letter words `srvr` and `cons`, as an operator would (reference E).
//! Nothing here sleeps for a fixed time: every wait polls with a deadline.
//! Dropping the cluster kills every process and removes the directory.
//!
//! The file is self-contained (no `super::` imports) so that the example can
//! include it with `#[path]` as well; it does not know how the server binary
//! is found — the caller passes a [`ServerCommand`] (tests use
//! `env!("CARGO_BIN_EXE_zab-server")`, which only exists for tests).

// Each user of the harness needs a different subset of it.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

// The port picker, also loaded by `support`. A test binary that uses both
// has two copies, each with its own record of the ports it handed out;
// both pick at random from the same range and never a port bound at the
// time, so they seldom meet.
#[path = "ports.rs"]
#[allow(clippy::duplicate_mod)]
mod ports;
#[allow(unused_imports)] // each test binary uses a different subset
pub use ports::{free_ports, free_ports_on};

/// A node frozen by [`TestCluster::freeze`]; dropping it resumes the node.
#[must_use = "the node resumes when this is dropped"]
pub struct Frozen {
    pid: u32,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // No assertion here: this may run while a failed test unwinds.
        signal(self.pid, "-CONT");
    }
}

/// Sends a signal with `kill(1)` (no libc in the tests' dependencies);
/// whether it was delivered.
fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

/// What `srvr` prints while a server elects or syncs (reference E).
const NOT_SERVING: &str = "not currently serving requests";

/// How often the harness polls a condition.
const POLL: Duration = Duration::from_millis(25);

/// How long a stopped (SIGTERM) server gets to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How the server process is started: a program and the arguments that come
/// before the path of `zoo.cfg`.
#[derive(Clone, Debug)]
pub struct ServerCommand {
    program: PathBuf,
    args: Vec<OsString>,
    /// A JVM: the zoo.cfg keys in [`JVM_PROPERTIES`] are passed to it as
    /// `-Dkey=value` as well (ZooKeeper reads them only as system
    /// properties; zab reads them from zoo.cfg).
    jvm: bool,
}

/// zoo.cfg keys a JVM server gets as system properties, from each node's
/// own zoo.cfg (so nodes may differ, e.g. in their JAAS files).
const JVM_PROPERTIES: &[&str] = &["java.security.auth.login.config", "java.security.krb5.conf"];

impl ServerCommand {
    /// `program zoo.cfg`, e.g. the `zab-server` binary.
    pub fn binary(program: impl Into<PathBuf>) -> ServerCommand {
        ServerCommand {
            program: program.into(),
            args: Vec::new(),
            jvm: false,
        }
    }

    /// Apache ZooKeeper 3.8 from the Debian package, the JVM started directly
    /// (so a kill hits the server, not a shell) with a small heap and a
    /// quick start.
    ///
    /// Debian's class path has no SLF4J binding, so the servers log
    /// nothing; with `ZAB_TEST_ZOOKEEPER_LOG` set they log as
    /// [`ServerCommand::logged`] makes them.
    pub fn zookeeper() -> ServerCommand {
        let mut c = ServerCommand::with_args(
            "java",
            [
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-cp",
                "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ],
        );
        c.jvm = true;
        if std::env::var_os("ZAB_TEST_ZOOKEEPER_LOG").is_some() {
            c = c.logged();
        }
        c
    }

    /// A ZooKeeper command whose servers log (at INFO, to their output):
    /// SLF4J's simple binding joins the class path (Debian's
    /// `libslf4j-java`, which `zookeeper` depends on). For a test that reads
    /// ZooKeeper's log, and for reports.
    pub fn logged(mut self) -> ServerCommand {
        const BINDING: &str = "/usr/share/java/slf4j-simple.jar";
        if self
            .args
            .iter()
            .any(|a| a.to_str().is_some_and(|a| a.contains(BINDING)))
        {
            return self;
        }
        self.args
            .insert(0, "-Dorg.slf4j.simpleLogger.defaultLogLevel=info".into());
        for a in self.args.iter_mut() {
            if let Some(path) = a.to_str().filter(|a| a.starts_with("/etc/zookeeper/conf:")) {
                *a = format!("{path}:{BINDING}").into();
            }
        }
        self
    }

    /// As [`ServerCommand::zookeeper`] with the servlet API on the class
    /// path, for an ensemble whose AdminServer is on: Debian's
    /// `zookeeper.jar` manifest leaves `servlet-api.jar` out (as
    /// `support::ADMIN_CLASS_PATH` says; this file is also built alone).
    pub fn zookeeper_with_admin_server() -> ServerCommand {
        let mut c = ServerCommand::zookeeper();
        for a in c.args.iter_mut() {
            if let Some(path) = a.to_str().filter(|a| a.starts_with("/etc/zookeeper/conf:")) {
                *a = format!("{path}:/usr/share/java/servlet-api.jar").into();
            }
        }
        c
    }

    /// As [`ServerCommand::zookeeper`] with JVM system properties
    /// (`-Dkey=value`) that ZooKeeper does not read from zoo.cfg, such as
    /// `readonlymode.enabled`.
    pub fn zookeeper_with(properties: &[&str]) -> ServerCommand {
        let mut c = ServerCommand::zookeeper();
        for p in properties {
            c.args.insert(0, format!("-D{p}").into());
        }
        c
    }

    /// `program args… zoo.cfg`.
    pub fn with_args(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> ServerCommand {
        ServerCommand {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            jvm: false,
        }
    }
}

/// The shape and timing of an ensemble.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Voting members (`server.N=…:participant`).
    pub participants: usize,
    /// Non-voting members (`server.N=…:observer` and `peerType=observer`).
    pub observers: usize,
    /// `tickTime` in ms. Short ticks make elections, `syncLimit` and
    /// session timeouts (clamped to [2, 20] ticks) fast.
    pub tick_time_ms: u32,
    /// `initLimit` in ticks.
    pub init_limit: u32,
    /// `syncLimit` in ticks.
    pub sync_limit: u32,
    /// Additional `key=value` lines appended to every `zoo.cfg`.
    pub extra_cfg: String,
    /// Lines for one node's `zoo.cfg` only (index `i` for node `i`;
    /// nodes beyond the list get none).
    pub node_cfg: Vec<String>,
    /// Whether node `i`'s quorum and election ports (its `server.N=` line)
    /// are on 127.0.0.(i+1) rather than all on 127.0.0.1. A port that every
    /// node listens on — ZooKeeper's `observerMasterPort`, bound by each
    /// follower on its own quorum address — needs a different address per
    /// node on one machine; Linux routes all of 127.0.0.0/8 to the loopback
    /// interface with no setup. Client ports stay on 127.0.0.1.
    pub distinct_hosts: bool,
    /// How to start a server.
    pub command: ServerCommand,
}

impl ClusterSpec {
    /// `participants` voters and no observers, `tickTime=200`,
    /// `initLimit=10`, `syncLimit=5`.
    pub fn new(command: ServerCommand, participants: usize) -> ClusterSpec {
        ClusterSpec {
            participants,
            observers: 0,
            tick_time_ms: 200,
            init_limit: 10,
            sync_limit: 5,
            extra_cfg: String::new(),
            node_cfg: Vec::new(),
            distinct_hosts: false,
            command,
        }
    }

    /// The same ensemble with each node's quorum and election ports on its
    /// own loopback address (see [`ClusterSpec::distinct_hosts`]).
    pub fn with_distinct_hosts(mut self) -> ClusterSpec {
        self.distinct_hosts = true;
        self
    }

    /// The address of node `i`'s quorum and election ports: 127.0.0.(i+1)
    /// with distinct hosts, else 127.0.0.1. Known before the cluster starts,
    /// so a test can pick a port free on every node's address
    /// ([`free_ports_on`]) for its `extra_cfg`.
    pub fn host(&self, i: usize) -> Ipv4Addr {
        if self.distinct_hosts {
            let last = u8::try_from(i + 1)
                .ok()
                .filter(|&b| b < 255)
                .expect("at most 254 nodes with distinct hosts");
            Ipv4Addr::new(127, 0, 0, last)
        } else {
            Ipv4Addr::LOCALHOST
        }
    }

    /// Every node's [`ClusterSpec::host`], voters first, each address once.
    pub fn hosts(&self) -> Vec<Ipv4Addr> {
        let mut hosts: Vec<Ipv4Addr> = (0..self.participants + self.observers)
            .map(|i| self.host(i))
            .collect();
        hosts.dedup();
        hosts
    }

    /// The same ensemble with `observers` observers added after the voters.
    pub fn with_observers(mut self, observers: usize) -> ClusterSpec {
        self.observers = observers;
        self
    }

    /// The largest session timeout the servers grant (20 ticks, reference B).
    pub fn max_session_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.tick_time_ms) * 20)
    }
}

/// The role `srvr` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    /// Electing or syncing: "This ZooKeeper instance is not currently
    /// serving requests".
    NotServing,
    /// Any other `Mode:` line (standalone, read-only): a bug in a cluster.
    Other,
}

/// What `srvr` says about one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub mode: Mode,
    /// The `Zxid:` line; 0 when not serving (the line is absent then).
    pub zxid: u64,
}

impl NodeStatus {
    /// The epoch half of the zxid (reference A: `epoch << 32 | counter`).
    pub fn epoch(&self) -> u32 {
        (self.zxid >> 32) as u32
    }

    /// Parses a `srvr` answer.
    pub fn parse(text: &str) -> NodeStatus {
        if text.contains(NOT_SERVING) {
            return NodeStatus {
                mode: Mode::NotServing,
                zxid: 0,
            };
        }
        let mut status = NodeStatus {
            mode: Mode::Other,
            zxid: 0,
        };
        for line in text.lines() {
            if let Some(mode) = line.strip_prefix("Mode: ") {
                status.mode = match mode.trim() {
                    "leader" => Mode::Leader,
                    "follower" => Mode::Follower,
                    "observer" => Mode::Observer,
                    _ => Mode::Other,
                };
            } else if let Some(zxid) = line.strip_prefix("Zxid: ") {
                let zxid = zxid.trim();
                let hex = zxid.strip_prefix("0x").unwrap_or(zxid);
                status.zxid = u64::from_str_radix(hex, 16).unwrap_or(0);
            }
        }
        status
    }
}

/// One member of the ensemble.
struct Node {
    /// `myid`.
    sid: u64,
    observer: bool,
    /// The address of the quorum and election ports.
    host: Ipv4Addr,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// How many times the process has been spawned; each run logs to its own file.
    runs: u32,
}

impl Node {
    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.join(format!("server-{run}.log"))
    }

    fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }
}

/// N participants + M observers as separate processes.
pub struct TestCluster {
    spec: ClusterSpec,
    nodes: Vec<Node>,
    /// Removed (with every node's data) when the cluster is dropped.
    root: TempDir,
}

impl TestCluster {
    /// Writes every node's configuration and spawns every process. Returns
    /// at once; call [`TestCluster::wait_until_serving`] before using it.
    pub fn start(spec: ClusterSpec) -> TestCluster {
        let root = tempfile::Builder::new()
            .prefix("zab-cluster-")
            .tempdir()
            .expect("create the cluster's temp dir");
        let total = spec.participants + spec.observers;
        // Free on every node's address: a node's quorum and election ports
        // are bound on its own, and the client port on 127.0.0.1.
        let mut hosts = spec.hosts();
        if !hosts.contains(&Ipv4Addr::LOCALHOST) {
            hosts.push(Ipv4Addr::LOCALHOST);
        }
        let ports = free_ports_on(&hosts, total * 3);
        let mut nodes = Vec::with_capacity(total);
        for i in 0..total {
            let dir = root.path().join(format!("node{}", i + 1));
            fs::create_dir_all(dir.join("data")).expect("create dataDir");
            nodes.push(Node {
                sid: i as u64 + 1,
                observer: i >= spec.participants,
                host: spec.host(i),
                client_port: ports[3 * i],
                quorum_port: ports[3 * i + 1],
                election_port: ports[3 * i + 2],
                dir,
                child: None,
                runs: 0,
            });
        }
        let servers: String = nodes
            .iter()
            .map(|n| {
                format!(
                    "server.{}={}:{}:{}:{}\n",
                    n.sid,
                    n.host,
                    n.quorum_port,
                    n.election_port,
                    if n.observer {
                        "observer"
                    } else {
                        "participant"
                    }
                )
            })
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            let data_dir = n.dir.join("data");
            fs::write(data_dir.join("myid"), format!("{}\n", n.sid)).expect("write myid");
            let cfg = format!(
                "tickTime={tick}\n\
                 initLimit={init}\n\
                 syncLimit={sync}\n\
                 dataDir={data}\n\
                 clientPort={client}\n\
                 clientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\n\
                 admin.enableServer=false\n\
                 {peer}\
                 {servers}\
                 {extra}\n\
                 {own}\n",
                tick = spec.tick_time_ms,
                init = spec.init_limit,
                sync = spec.sync_limit,
                data = data_dir.display(),
                client = n.client_port,
                // ZooKeeper wants an observer to say so itself, too.
                peer = if n.observer {
                    "peerType=observer\n"
                } else {
                    ""
                },
                extra = spec.extra_cfg,
                own = spec.node_cfg.get(i).map_or("", String::as_str),
            );
            fs::write(n.cfg_path(), cfg).expect("write zoo.cfg");
        }
        let mut cluster = TestCluster { spec, nodes, root };
        for i in 0..total {
            cluster.spawn(i);
        }
        cluster
    }

    /// The specification the cluster was started with.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The number of nodes (participants and observers).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The indices of every node, in `myid` order.
    pub fn indices(&self) -> std::ops::Range<usize> {
        0..self.nodes.len()
    }

    /// Node `i`'s `myid`.
    pub fn sid(&self, i: usize) -> u64 {
        self.nodes[i].sid
    }

    /// Whether node `i` is configured as an observer.
    pub fn is_observer(&self, i: usize) -> bool {
        self.nodes[i].observer
    }

    /// Node `i`'s client address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].client_port))
    }

    /// The address of node `i`'s quorum and election ports (its
    /// `server.N=` line): see [`ClusterSpec::host`].
    pub fn host(&self, i: usize) -> Ipv4Addr {
        self.nodes[i].host
    }

    /// Node `i`'s election port.
    pub fn election_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from((self.nodes[i].host, self.nodes[i].election_port))
    }

    /// Node `i`'s quorum (leader ⇄ learner) port.
    pub fn quorum_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from((self.nodes[i].host, self.nodes[i].quorum_port))
    }

    /// `127.0.0.1:PORT` of node `i` alone.
    pub fn connect_string_of(&self, i: usize) -> String {
        self.addr(i).to_string()
    }

    /// Every node's client address, comma separated.
    pub fn connect_string(&self) -> String {
        self.indices()
            .map(|i| self.connect_string_of(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i`'s `dataDir`.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("data")
    }

    /// Whether node `i`'s process is running (reaping it if it exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        match node.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    /// The indices of the nodes whose processes run.
    pub fn running(&mut self) -> Vec<usize> {
        self.indices().filter(|&i| self.is_running(i)).collect()
    }

    /// The process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Freezes node `i` with SIGSTOP: its sockets stay open and nothing it
    /// was sent is answered, as with a server stuck in a long pause. The
    /// guard resumes it (SIGCONT) when dropped, so a failing test does not
    /// leave it frozen.
    pub fn freeze(&self, i: usize) -> Frozen {
        let pid = self.pid(i).expect("a running node to freeze");
        assert!(signal(pid, "-STOP"), "kill -STOP {pid} failed");
        Frozen { pid }
    }

    /// Kills node `i` with SIGKILL (no chance to flush or say goodbye) and
    /// reaps it. Its data stays for [`TestCluster::restart`].
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `i` with SIGTERM (a clean shutdown) and waits for it to
    /// exit; kills it if it has not exited within a grace period.
    pub fn stop(&mut self, i: usize) {
        let Some(mut child) = self.nodes[i].child.take() else {
            return;
        };
        // No libc in the dependency graph of the tests: `kill(1)` sends the signal.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(POLL),
            }
        }
    }

    /// Node `i`'s zoo.cfg, for a test to change before a restart.
    pub fn cfg_path(&self, i: usize) -> PathBuf {
        self.nodes[i].cfg_path()
    }

    /// Starts node `i` again on the same directory and ports (killing it
    /// first if it still runs). Returns at once.
    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.spawn(i);
    }

    /// Sends a four-letter word to node `i`.
    pub fn four_letter_word(&self, i: usize, word: &str) -> std::io::Result<String> {
        four_letter_word(self.addr(i), word)
    }

    /// What node `i`'s `srvr` says, or `None` if it does not answer.
    pub fn status(&self, i: usize) -> Option<NodeStatus> {
        let text = self.four_letter_word(i, "srvr").ok()?;
        if text.is_empty() {
            return None;
        }
        Some(NodeStatus::parse(&text))
    }

    /// The `srvr` zxid of node `i` while it serves.
    pub fn zxid(&self, i: usize) -> Option<u64> {
        self.status(i)
            .filter(|s| s.mode != Mode::NotServing)
            .map(|s| s.zxid)
    }

    /// The running node whose `srvr` says `Mode: leader`, if exactly one does.
    pub fn leader(&mut self) -> Option<usize> {
        let leaders: Vec<usize> = self
            .running()
            .into_iter()
            .filter(|&i| self.status(i).map(|s| s.mode) == Some(Mode::Leader))
            .collect();
        match leaders[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The running node whose `cons` lists a connection of `session_id`.
    pub fn session_holder(&mut self, session_id: i64) -> Option<usize> {
        let needle = format!("sid=0x{:x}", session_id);
        self.running().into_iter().find(|&i| {
            self.four_letter_word(i, "cons")
                .map(|text| text.contains(&needle))
                .unwrap_or(false)
        })
    }

    /// Whether the running nodes form a serving ensemble: exactly one
    /// leader, every other running voter following and every running
    /// observer observing. Returns the leader.
    pub fn serving_leader(&mut self) -> Option<usize> {
        let running = self.running();
        let mut leader = None;
        for &i in &running {
            let mode = self.status(i)?.mode;
            match (mode, self.nodes[i].observer) {
                (Mode::Leader, false) if leader.is_none() => leader = Some(i),
                (Mode::Follower, false) | (Mode::Observer, true) => {}
                _ => return None,
            }
        }
        leader
    }

    /// Polls until [`TestCluster::serving_leader`] holds, and returns the
    /// leader; panics with every node's status and log after `within`.
    pub fn wait_until_serving(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.serving_leader() {
                return leader;
            }
            self.check_not_crashed();
            if Instant::now() > deadline {
                panic!(
                    "the ensemble did not serve within {within:?}\n{}",
                    self.report()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls until nodes 0 and 1 serve as leader and follower and
    /// `refused(self, how long they have)` holds, asserting at every poll
    /// that node `out` does not serve as either; panics with a report after
    /// `within`. For an ensemble that must keep node `out` out.
    pub fn wait_for_pair_without(
        &mut self,
        out: usize,
        within: Duration,
        mut refused: impl FnMut(&TestCluster, Duration) -> bool,
    ) {
        let deadline = Instant::now() + within;
        let mut pair_since: Option<Instant> = None;
        loop {
            let modes: Vec<Option<Mode>> = self
                .indices()
                .map(|i| self.status(i).map(|s| s.mode))
                .collect();
            let pair_serves = matches!(
                (modes[0], modes[1]),
                (Some(Mode::Leader), Some(Mode::Follower))
                    | (Some(Mode::Follower), Some(Mode::Leader))
            );
            assert!(
                !matches!(modes[out], Some(Mode::Leader | Mode::Follower)),
                "node {} joined: {modes:?}",
                out + 1
            );
            pair_since = pair_since
                .filter(|_| pair_serves)
                .or(pair_serves.then(Instant::now));
            if pair_since.is_some_and(|t| refused(self, t.elapsed())) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nodes 1 and 2 did not serve, or refuse node {}, in time: {modes:?}\n{}",
                out + 1,
                self.report()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Polls until every running node serves with the same `srvr` zxid, and
    /// returns it; panics with a report after `within`.
    pub fn wait_until_converged(&mut self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let zxids: Vec<Option<u64>> =
                self.running().into_iter().map(|i| self.zxid(i)).collect();
            if let Some(Some(first)) = zxids.first() {
                if zxids.iter().all(|z| *z == Some(*first)) {
                    return *first;
                }
            }
            self.check_not_crashed();
            if Instant::now() > deadline {
                panic!(
                    "the running nodes did not reach the same zxid within {within:?}: {zxids:x?}\n{}",
                    self.report()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Everything node `i` wrote to stdout/stderr, all runs.
    pub fn output(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let mut all = String::new();
        for run in 1..=node.runs {
            if let Ok(text) = fs::read_to_string(node.log_path(run)) {
                all.push_str(&format!("--- node {} run {run} ---\n{text}", node.sid));
            }
        }
        all
    }

    /// Every node's `srvr` status and the last lines of its log, for
    /// failure messages.
    pub fn report(&mut self) -> String {
        let mut out = String::new();
        for i in self.indices() {
            let running = self.is_running(i);
            let status = if running { self.status(i) } else { None };
            out.push_str(&format!(
                "== node {} (client {}, quorum {}) running={running} status={status:?}\n",
                self.nodes[i].sid,
                self.addr(i),
                self.quorum_addr(i)
            ));
            out.push_str(&sockets_on(&[
                self.nodes[i].client_port,
                self.nodes[i].quorum_port,
                self.nodes[i].election_port,
            ]));
            let log = self.output(i);
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(40);
            for line in &lines[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Panics, with the node's output, if a process we started has exited
    /// on its own (kill9/stop forget the child first, so those don't count).
    fn check_not_crashed(&mut self) {
        for i in self.indices() {
            let node = &mut self.nodes[i];
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                let sid = node.sid;
                panic!(
                    "node {sid} exited on its own with {status}\n{}",
                    self.output(i)
                );
            }
        }
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.runs += 1;
        let log = File::create(node.log_path(node.runs)).expect("create server log");
        let log_err = log.try_clone().expect("clone log handle");
        let mut properties = Vec::new();
        if self.spec.command.jvm {
            let cfg = fs::read_to_string(node.cfg_path()).expect("read zoo.cfg");
            for line in cfg.lines() {
                if let Some((key, value)) = line.split_once('=') {
                    if JVM_PROPERTIES.contains(&key.trim()) {
                        properties.push(format!("-D{}={}", key.trim(), value.trim()));
                    }
                }
            }
        }
        let child = Command::new(&self.spec.command.program)
            .args(&properties)
            .args(&self.spec.command.args)
            .arg(node.cfg_path())
            .env(
                "ZAB_LOG",
                std::env::var("ZAB_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.spec.command.program));
        node.child = Some(child);
    }

    /// The cluster's root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCluster")
            .field("nodes", &self.nodes.len())
            .field("connect_string", &self.connect_string())
            .finish()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in self.indices() {
            self.kill9(i);
        }
        // `ZAB_CLUSTER_KEEP=1` keeps configurations, data and logs for a
        // post-mortem; the path goes to stderr.
        if std::env::var_os("ZAB_CLUSTER_KEEP").is_some_and(|v| v == "1") {
            let dir = std::mem::replace(
                &mut self.root,
                tempfile::Builder::new()
                    .prefix("zab-cluster-gone-")
                    .tempdir()
                    .expect("create temp dir"),
            );
            eprintln!("cluster directory kept: {}", dir.keep().display());
        }
    }
}

/// The sockets using any of `ports` as `ss -tanp` lists them (empty if `ss`
/// is not installed), for failure messages.
fn sockets_on(ports: &[u16]) -> String {
    let Ok(out) = Command::new("ss").arg("-tanp").output() else {
        return String::new();
    };
    let needles: Vec<String> = ports.iter().map(|p| format!(":{p} ")).collect();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| needles.iter().any(|n| line.contains(n.as_str())))
        .map(|line| format!("  socket: {line}\n"))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srvr() {
        let s = NodeStatus::parse(
            "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nZxid: 0x300000007\nMode: follower\nNode count: 5\n",
        );
        assert_eq!(
            s,
            NodeStatus {
                mode: Mode::Follower,
                zxid: 0x3_0000_0007
            }
        );
        assert_eq!(s.epoch(), 3);
        assert_eq!(
            NodeStatus::parse("This ZooKeeper instance is not currently serving requests\n").mode,
            Mode::NotServing
        );
    }
}
