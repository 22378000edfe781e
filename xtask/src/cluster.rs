//! `cargo xtask cluster`: a local zab ensemble on 127.0.0.1.
//!
//! Each node gets a data directory with `zoo.cfg` and `myid`; its output is
//! prefixed with its id. Commands typed on stdin kill (`kill -9`), stop and
//! restart nodes; Ctrl-C stops every node cleanly (SIGTERM).

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const HELP: &str = "\
usage: cargo xtask cluster [options]

  --nodes N        voting servers (default 3; 1 runs a standalone server)
  --observers M    observers in addition (default 0)
  --observer-master
                   observers sync from followers (observerMasterPort): node N's quorum
                   and election ports move to its own address 127.0.0.N, and every
                   node gets one observer master port (P+400 with --base-port)
  --quorum-sasl    servers authenticate each other (quorum.auth.*, DIGEST-MD5): every
                   node requires it both ways, with a JAAS file written beside the data
  --data-dir DIR   keep data here between runs (default: a fresh temporary directory)
  --base-port P    client ports P, P+1, ...; quorum ports P+100+i, election ports P+200+i,
                   admin server ports P+300+i
                   (default: free ports picked at start)
  --tick-time MS   tickTime (default 2000)
  --release        build zab-server with the release profile

Every node's zoo.cfg gets zab.workerThreads = CPUs / nodes (at least 1):
the nodes share this machine.

While it runs, type a command and Enter:
  status           Mode and Zxid of every node (its `srvr`)
  kill N           kill -9 node N
  stop N           stop node N cleanly (SIGTERM)
  start N          start node N again (same data)
  help             this list
Ctrl-C stops every node cleanly.
";

struct Options {
    nodes: usize,
    observers: usize,
    observer_master: bool,
    quorum_sasl: bool,
    data_dir: Option<PathBuf>,
    base_port: Option<u16>,
    tick_time: u32,
    release: bool,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        nodes: 3,
        observers: 0,
        observer_master: false,
        quorum_sasl: false,
        data_dir: None,
        base_port: None,
        tick_time: 2000,
        release: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--nodes" => o.nodes = number(&value("--nodes")?, "--nodes")?,
            "--observers" => o.observers = number(&value("--observers")?, "--observers")?,
            "--observer-master" => o.observer_master = true,
            "--quorum-sasl" => o.quorum_sasl = true,
            "--data-dir" => o.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--base-port" => o.base_port = Some(number(&value("--base-port")?, "--base-port")?),
            "--tick-time" => o.tick_time = number(&value("--tick-time")?, "--tick-time")?,
            "--release" => o.release = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            other => return Err(format!("unknown option `{other}`\n{HELP}")),
        }
    }
    if o.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if o.nodes == 1 && o.observers > 0 {
        // ZooKeeper refuses one voter plus observers with standaloneEnabled.
        return Err("observers need at least 2 voting nodes".into());
    }
    if o.quorum_sasl && o.nodes == 1 {
        return Err("--quorum-sasl needs at least 2 voting nodes".into());
    }
    if o.observer_master && o.observers == 0 {
        return Err("--observer-master needs observers (--observers M)".into());
    }
    if o.observer_master && o.nodes + o.observers > 254 {
        return Err("--observer-master gives each node an address 127.0.0.N: at most 254".into());
    }
    Ok(Some(o))
}

pub(crate) fn number<T: std::str::FromStr>(s: &str, name: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{name}: `{s}` is not a number"))
}

/// Threads each of `servers` servers sharing this machine gets: the CPUs
/// divided among them, at least one. Written into every zab node's zoo.cfg
/// as `zab.workerThreads`, since a server's default (one worker per CPU)
/// assumes a machine of its own.
pub(crate) fn colocated_threads(servers: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / servers.max(1)).max(1)
}

/// `n` distinct free ports on 127.0.0.1, below the kernel's ephemeral
/// range. A server binds its quorum port only while it leads (as ZooKeeper
/// does), so a port from the ephemeral range could meanwhile become the
/// source port of an outgoing connection, and the elected leader would fail
/// to listen. All `n` listeners are held until the last is bound, so no two
/// ports coincide.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000u16;
    let span = ephemeral_low.saturating_sub(low).max(1_000);
    // Start somewhere that differs per run, then walk up the range.
    let start = (std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos())))
        % u64::from(span);
    let mut listeners = Vec::with_capacity(n);
    for step in 0..u64::from(span) {
        if listeners.len() == n {
            break;
        }
        let port = low + ((start + step) % u64::from(span)) as u16;
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            listeners.push(l);
        }
    }
    if listeners.len() < n {
        return Err(format!(
            "fewer than {n} free ports between {low} and {ephemeral_low}"
        ));
    }
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

struct Node {
    id: usize,
    observer: bool,
    /// The address of its quorum and election ports: 127.0.0.1, or
    /// 127.0.0.`id` with `--observer-master` (every follower listens on the
    /// same observer master port at its own quorum address).
    host: Ipv4Addr,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    /// The admin server's port (ZooKeeper's AdminServer, on 127.0.0.1).
    admin_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(opts) = parse(args)? else {
        return Ok(());
    };
    crate::system::ensure_packages()?;

    let mut build = crate::cargo();
    build.args(["build", "--package", "zab-server", "--bin", "zab-server"]);
    if opts.release {
        build.arg("--release");
    }
    if !build
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?
        .success()
    {
        return Err("building zab-server failed".into());
    }
    let bin = target_dir()
        .join(if opts.release { "release" } else { "debug" })
        .join("zab-server");

    let root = match &opts.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("zab-cluster-{}", std::process::id())),
    };
    let total = opts.nodes + opts.observers;
    let picked = match opts.base_port {
        Some(_) => Vec::new(),
        None => free_ports(4 * total + 1)?,
    };
    let observer_master_port = opts.observer_master.then(|| match opts.base_port {
        Some(p) => p + 400,
        None => picked[4 * total],
    });
    let mut nodes = Vec::new();
    for id in 1..=total {
        let (client_port, quorum_port, election_port, admin_port) = match opts.base_port {
            Some(p) => {
                let i = id as u16 - 1;
                (p + i, p + 100 + i, p + 200 + i, p + 300 + i)
            }
            None => {
                let at = 4 * (id - 1);
                (picked[at], picked[at + 1], picked[at + 2], picked[at + 3])
            }
        };
        nodes.push(Node {
            id,
            observer: id > opts.nodes,
            host: match opts.observer_master {
                true => Ipv4Addr::new(127, 0, 0, id as u8),
                false => Ipv4Addr::LOCALHOST,
            },
            client_port,
            quorum_port,
            election_port,
            admin_port,
            dir: root.join(format!("node{id}")),
            child: None,
        });
    }
    let jaas = match opts.quorum_sasl {
        true => Some(write_quorum_jaas(&root)?),
        false => None,
    };
    for n in &nodes {
        write_node_files(n, &nodes, &opts, observer_master_port, jaas.as_deref())?;
    }
    for n in nodes.iter_mut() {
        start(&bin, n)?;
    }
    let connect: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client_port))
        .collect();
    for n in &nodes {
        println!(
            "node {}{}: client 127.0.0.1:{}, quorum {}:{}, election {}:{}, admin http://127.0.0.1:{}/commands, data {}",
            n.id,
            if n.observer { " (observer)" } else { "" },
            n.client_port,
            n.host,
            n.quorum_port,
            n.host,
            n.election_port,
            n.admin_port,
            n.dir.display()
        );
    }
    install_signal_handlers();
    println!("waiting for the ensemble to elect a leader and serve");
    match wait_until_serving(&mut nodes, SERVING_WITHIN) {
        Startup::Serving { leader } => println!("serving: node {leader} leads"),
        Startup::Interrupted => {}
        Startup::NotServing(why) => {
            eprintln!("{why}; the nodes keep running: type `status`, or Ctrl-C to stop")
        }
    }
    println!("connect string: {}", connect.join(","));
    if let Some(port) = observer_master_port {
        println!("observerMasterPort {port}: observers sync from followers");
    }
    if let Some(jaas) = &jaas {
        println!(
            "quorum SASL required both ways; users in {}",
            jaas.display()
        );
    }
    println!("type `help` for commands; Ctrl-C stops the cluster");

    let commands = spawn_stdin_reader();
    while !STOP.load(Ordering::SeqCst) {
        match commands.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Err(e) = command(&line, &bin, &mut nodes) {
                    eprintln!("{e}");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // stdin closed (not a terminal): keep running until Ctrl-C.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(200))
            }
        }
        for n in nodes.iter_mut() {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    eprintln!("node {}: exited ({status})", n.id);
                    n.child = None;
                }
            }
        }
    }
    println!("stopping every node");
    for n in nodes.iter_mut() {
        stop(n);
    }
    if opts.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

fn command(line: &str, bin: &Path, nodes: &mut [Node]) -> Result<(), String> {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(());
    };
    let node = |words: &mut std::str::SplitWhitespace| -> Result<usize, String> {
        let id: usize = words
            .next()
            .ok_or("which node? e.g. `kill 1`")?
            .parse()
            .map_err(|_| "a node is a number, e.g. `kill 1`".to_string())?;
        if id == 0 || id > nodes.len() {
            return Err(format!("no node {id}"));
        }
        Ok(id - 1)
    };
    match cmd {
        "help" | "?" => print!("{HELP}"),
        "status" => {
            for n in nodes.iter() {
                let state = if n.child.is_none() {
                    "down".to_string()
                } else {
                    srvr_summary(n.client_port)
                };
                println!("node {}: {state}", n.id);
            }
        }
        "kill" => {
            let i = node(&mut words)?;
            if let Some(mut c) = nodes[i].child.take() {
                let _ = c.kill(); // SIGKILL
                let _ = c.wait();
                println!("node {}: killed (kill -9)", i + 1);
            }
        }
        "stop" => {
            let i = node(&mut words)?;
            stop(&mut nodes[i]);
            println!("node {}: stopped", i + 1);
        }
        "start" | "restart" => {
            let i = node(&mut words)?;
            stop(&mut nodes[i]);
            start(bin, &mut nodes[i])?;
            println!("node {}: started", i + 1);
        }
        other => return Err(format!("unknown command `{other}`; type `help`")),
    }
    Ok(())
}

/// `Mode` and `Zxid` from the node's `srvr`.
fn srvr_summary(port: u16) -> String {
    match crate::four_letter::srvr(port) {
        Ok(text) => {
            use crate::four_letter::field;
            match (field(&text, "Mode"), field(&text, "Zxid")) {
                (Some(mode), Some(zxid)) => format!("{mode}, zxid {zxid}"),
                _ => text.trim().to_string(),
            }
        }
        Err(e) => format!("not answering ({e})"),
    }
}

/// How long a new ensemble may take to elect and serve before xtask says
/// so. ZooKeeper's election settles in well under a second on loopback;
/// a debug build's first start is slower, never this slow.
const SERVING_WITHIN: Duration = Duration::from_secs(60);

/// What waiting for the ensemble to serve ended with.
#[derive(Debug, PartialEq)]
enum Startup {
    /// Every node answers `srvr` with its mode; this node leads (or is the
    /// standalone server).
    Serving { leader: usize },
    /// Ctrl-C came first.
    Interrupted,
    /// A node exited, or the deadline passed: what each node answered.
    NotServing(String),
}

/// Polls every node's `srvr` until each names its mode and one of them
/// leads. Until then a client would be refused ("not currently serving
/// requests"), so the connect string is printed only after it: a script
/// that starts the cluster and reads that line can use it at once.
fn wait_until_serving(nodes: &mut [Node], within: Duration) -> Startup {
    let deadline = std::time::Instant::now() + within;
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Startup::Interrupted;
        }
        for n in nodes.iter_mut() {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    n.child = None;
                    return Startup::NotServing(format!("node {} exited ({status})", n.id));
                }
            }
        }
        let modes: Vec<(usize, Option<String>)> = nodes
            .iter()
            .map(|n| (n.id, crate::four_letter::mode(n.client_port)))
            .collect();
        if let Some(leader) = crate::four_letter::serving(&modes) {
            return Startup::Serving { leader };
        }
        if std::time::Instant::now() > deadline {
            let said: Vec<String> = modes
                .iter()
                .map(|(id, m)| format!("node {id}: {}", m.as_deref().unwrap_or("not serving")))
                .collect();
            return Startup::NotServing(format!(
                "not serving after {}s ({})",
                within.as_secs(),
                said.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A JAAS file with ZooKeeper's quorum sections, one user `zab` with a
/// password drawn for this cluster: what every node both accepts and logs
/// in with.
fn write_quorum_jaas(root: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!(
        "QuorumServer {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         user_zab=\"{password}\";\n}};\n\
         QuorumLearner {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         username=\"zab\"\n    password=\"{password}\";\n}};\n"
    );
    let path = root.join("quorum.jaas");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn write_node_files(
    n: &Node,
    all: &[Node],
    opts: &Options,
    observer_master_port: Option<u16>,
    quorum_jaas: Option<&Path>,
) -> Result<(), String> {
    std::fs::create_dir_all(&n.dir).map_err(|e| format!("{}: {e}", n.dir.display()))?;
    let mut cfg = format!(
        "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={}\nzab.workerThreads={}\n",
        opts.tick_time,
        n.dir.display(),
        n.client_port,
        n.admin_port,
        colocated_threads(all.len()),
    );
    if let Some(port) = observer_master_port {
        cfg.push_str(&format!("observerMasterPort={port}\n"));
    }
    if let Some(jaas) = quorum_jaas {
        cfg.push_str(&format!(
            "java.security.auth.login.config={}\nquorum.auth.enableSasl=true\n\
             quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n",
            jaas.display()
        ));
    }
    if all.len() > 1 {
        for m in all {
            cfg.push_str(&format!(
                "server.{}={}:{}:{}{}\n",
                m.id,
                m.host,
                m.quorum_port,
                m.election_port,
                if m.observer { ":observer" } else { "" }
            ));
        }
    }
    let path = n.dir.join("zoo.cfg");
    std::fs::write(&path, cfg).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(n.dir.join("myid"), format!("{}\n", n.id)).map_err(|e| e.to_string())
}

fn start(bin: &Path, n: &mut Node) -> Result<(), String> {
    let mut child = Command::new(bin)
        .arg(n.dir.join("zoo.cfg"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    prefix_output(n.id, child.stdout.take());
    prefix_output(n.id, child.stderr.take());
    n.child = Some(child);
    Ok(())
}

fn stop(n: &mut Node) {
    if let Some(mut c) = n.child.take() {
        // SIGTERM: zab-server shuts down cleanly on it.
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let _ = c.wait();
    }
}

fn prefix_output(id: usize, stream: Option<impl Read + Send + 'static>) {
    if let Some(s) = stream {
        std::thread::spawn(move || {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                println!("[node{id}] {line}");
            }
        });
    }
}

fn spawn_stdin_reader() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

pub(crate) fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // xtask lives in <workspace>/xtask.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("target"))
        .unwrap_or_else(|| PathBuf::from("target"))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ctrl-C reaches the whole foreground process group: the nodes get SIGINT
/// and shut down cleanly by themselves; xtask notes it, waits for them and
/// removes the temporary data directory.
fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        let ports = free_ports(30).expect("30 free ports");
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 30, "{ports:?}");
        assert!(ports.iter().all(|&p| p >= 10_000), "{ports:?}");
        if ephemeral_low > 11_000 {
            assert!(ports.iter().all(|&p| p < ephemeral_low), "{ports:?}");
        }
    }

    #[test]
    fn observer_master_needs_observers() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = parse(&args(&["--observer-master"])).err();
        assert!(err.is_some_and(|e| e.contains("needs observers")));
        let ok = parse(&args(&["--observers", "1", "--observer-master"]));
        assert!(ok.is_ok_and(|o| o.is_some_and(|o| o.observer_master && o.observers == 1)));
    }

    /// `--quorum-sasl` needs a quorum, and gives every node the JAAS file
    /// and the keys that require SASL both ways.
    #[test]
    fn quorum_sasl_writes_a_jaas_file_and_requires_it_everywhere() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = parse(&args(&["--nodes", "1", "--quorum-sasl"])).err();
        assert!(err.is_some_and(|e| e.contains("at least 2")));
        let opts = parse(&args(&["--quorum-sasl"])).unwrap().unwrap();
        let root = std::env::temp_dir().join(format!("xtask-sasl-{}", std::process::id()));
        let jaas = write_quorum_jaas(&root).unwrap();
        let text = std::fs::read_to_string(&jaas).unwrap();
        assert!(text.contains("QuorumServer {") && text.contains("QuorumLearner {"));
        assert!(text.contains("user_zab=") && text.contains("username=\"zab\""));
        let node = Node {
            id: 1,
            observer: false,
            host: Ipv4Addr::LOCALHOST,
            client_port: 1,
            quorum_port: 2,
            election_port: 3,
            admin_port: 4,
            dir: root.join("node1"),
            child: None,
        };
        write_node_files(&node, std::slice::from_ref(&node), &opts, None, Some(&jaas)).unwrap();
        let cfg = std::fs::read_to_string(root.join("node1/zoo.cfg")).unwrap();
        for key in [
            "quorum.auth.enableSasl=true",
            "quorum.auth.learnerRequireSasl=true",
            "quorum.auth.serverRequireSasl=true",
        ] {
            assert!(cfg.contains(key), "{cfg}");
        }
        assert!(cfg.contains(&format!(
            "java.security.auth.login.config={}",
            jaas.display()
        )));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn colocated_servers_share_the_cpus() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(colocated_threads(1), cpus);
        assert_eq!(colocated_threads(cpus * 4), 1);
        assert_eq!(colocated_threads(0), cpus);
    }
}
