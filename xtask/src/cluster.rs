//! `cargo xtask cluster`: zab servers on 127.0.0.1, stopped on Ctrl-C.
//!
//! Each node gets a data directory, a `zoo.cfg` and a `myid`; the node's
//! output is prefixed with its id. Ports are picked free at start.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const HELP: &str = "\
usage: cargo xtask cluster [options]

  --nodes N        number of zab servers (default 1; see the note below)
  --data-dir DIR   keep data here between runs (default: a fresh temporary directory)
  --base-port P    first client port (default: free ports picked at start)
  --release        build zab-server with the release profile

Stops every node cleanly (SIGTERM) on Ctrl-C.

Note: replication (ZAB between servers) is not built yet, so only a single
standalone server is supported for now; --nodes greater than 1 is refused.
";

struct Options {
    nodes: usize,
    data_dir: Option<PathBuf>,
    base_port: Option<u16>,
    release: bool,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        nodes: 1,
        data_dir: None,
        base_port: None,
        release: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--nodes" => {
                o.nodes = value("--nodes")?
                    .parse()
                    .map_err(|e| format!("--nodes: {e}"))?
            }
            "--data-dir" => o.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--base-port" => {
                o.base_port = Some(
                    value("--base-port")?
                        .parse()
                        .map_err(|e| format!("--base-port: {e}"))?,
                )
            }
            "--release" => o.release = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            other => return Err(format!("unknown option `{other}`\n{HELP}")),
        }
    }
    if o.nodes != 1 {
        return Err(format!(
            "--nodes {}: replication is not built yet; only a single standalone server runs for now",
            o.nodes
        ));
    }
    Ok(Some(o))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot pick a port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
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
    let mut children = Vec::new();
    let mut connect = Vec::new();
    for id in 1..=opts.nodes {
        let port = match opts.base_port {
            Some(p) => p + id as u16 - 1,
            None => free_port()?,
        };
        let dir = root.join(format!("node{id}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cfg = dir.join("zoo.cfg");
        write_config(&cfg, &dir, port)?;
        std::fs::write(dir.join("myid"), format!("{id}\n")).map_err(|e| e.to_string())?;
        println!(
            "node {id}: client port 127.0.0.1:{port}, data {}",
            dir.display()
        );
        connect.push(format!("127.0.0.1:{port}"));
        let mut child = Command::new(&bin)
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        prefix_output(id, child.stdout.take());
        prefix_output(id, child.stderr.take());
        children.push(child);
    }
    println!("connect string: {}", connect.join(","));
    println!("press Ctrl-C to stop");

    let stop = Arc::new(AtomicBool::new(false));
    install_sigint(stop.clone());
    while !stop.load(Ordering::SeqCst) {
        for (i, c) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                eprintln!("node {}: exited ({status})", i + 1);
            }
        }
        if children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_all(&mut children);
    if opts.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

fn write_config(cfg: &Path, dir: &Path, port: u16) -> Result<(), String> {
    let text = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n",
        dir.display()
    );
    std::fs::write(cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))
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

fn stop_all(children: &mut [Child]) {
    for c in children.iter() {
        // SIGTERM: zab-server shuts down cleanly on it.
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // xtask lives in <workspace>/xtask.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("target")
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ctrl-C reaches the whole foreground process group: the nodes get SIGINT
/// and shut down cleanly by themselves; xtask only notes it, waits for them
/// and removes the temporary data directory.
fn install_sigint(stop: Arc<AtomicBool>) {
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
    std::thread::spawn(move || loop {
        if STOP.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    });
}
