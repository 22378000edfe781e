//! `zab-server path/to/zoo.cfg`: starts a server as ZooKeeper's
//! `QuorumPeerMain zoo.cfg` would.
//!
//! `zab-server --import-zookeeper DIR path/to/zoo.cfg`: imports a ZooKeeper
//! `dataDir` (its newest snapshot and the txns logged after it) into the
//! empty store of that zoo.cfg's `dataDir`, then exits.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;
use zab_server::config::Config;
use zab_server::exit_code::ExitCode;
use zab_server::quorum::QuorumServer;
use zab_server::server::Server;

/// mimalloc rather than glibc's malloc for zab's own allocations: measured
/// with `cargo xtask bench` on a 3-node ensemble, `set` 32×8 went from
/// ≈ 20k to ≈ 22–24k ops/s, and RSS at 1M znodes from 345–362 to
/// 331–338 MiB per server (BENCHMARKS.md). RocksDB's C++ allocations still
/// use glibc, hence the mmap threshold below.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: zab-server path/to/zoo.cfg\n       zab-server port dataDir [tickTime] [maxClientCnxns]\n       zab-server --import-zookeeper ZOOKEEPER_DATA_DIR [ZOOKEEPER_DATA_LOG_DIR] path/to/zoo.cfg\n       zab-server --version";

fn main() {
    if let Err(e) = run() {
        // As `main` returning the error prints it, with the code ZooKeeper
        // exits with for the same failure.
        eprintln!("Error: {e:?}");
        ExitCode::of(&e).exit();
    }
}

fn run() -> anyhow::Result<()> {
    fix_malloc_mmap_threshold();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ZAB_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let (import_from, import_logs, source) = match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return Ok(());
        }
        [flag] if flag == "-V" || flag == "--version" => {
            // As `zkServer.sh version` words it.
            println!(
                "zab-server, version {}",
                zab_server::four_letter::full_version()
            );
            return Ok(());
        }
        // An option this binary does not know is not a zoo.cfg path.
        [p] if !p.to_string_lossy().starts_with('-') => {
            (None, None, ConfigSource::File(PathBuf::from(p)))
        }
        [flag, dir, p] if flag == "--import-zookeeper" => (
            Some(PathBuf::from(dir)),
            None,
            ConfigSource::File(PathBuf::from(p)),
        ),
        [flag, dir, logs, p] if flag == "--import-zookeeper" => (
            Some(PathBuf::from(dir)),
            Some(PathBuf::from(logs)),
            ConfigSource::File(PathBuf::from(p)),
        ),
        standalone @ [port, ..]
            if (2..=4).contains(&standalone.len()) && !port.to_string_lossy().starts_with('-') =>
        {
            (None, None, ConfigSource::Args(standalone_cfg(standalone)))
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::InvalidInvocation.exit();
        }
    };
    let loaded = match &source {
        ConfigSource::File(path) => Config::load(path)
            .with_context(|| format!("reading {}", path.display()))
            .and_then(|cfg| {
                cfg.validate()
                    .with_context(|| format!("invalid configuration in {}", path.display()))?;
                Ok(cfg)
            }),
        ConfigSource::Args(text) => Config::parse(text, None)
            .and_then(|cfg| cfg.validate().map(|()| cfg))
            .context("invalid arguments"),
    };
    let cfg = match loaded {
        Ok(cfg) => cfg,
        // ZooKeeper's `QuorumPeerMain` exits with INVALID_CONFIG (2) on a
        // configuration it cannot use; init scripts and supervisors tell
        // it apart from a server that failed while running (1).
        Err(e) => {
            eprintln!("Error: {e:?}");
            if matches!(source, ConfigSource::Args(_)) {
                eprintln!("{USAGE}");
            }
            ExitCode::InvalidInvocation.exit();
        }
    };
    if let Some(dir) = import_from {
        let done = zab_server::zookeeper_import::import(&dir, import_logs.as_deref(), &cfg)
            .with_context(|| format!("importing {}", dir.display()))?;
        tracing::info!(
            snapshot = ?done.snapshot,
            zxid = %done.zxid,
            nodes = done.nodes,
            sessions = done.sessions,
            replayed = done.replayed,
            digests_checked = done.digests.checked,
            digests_mismatched = done.digests.mismatched,
            digests_fuzzy = done.digests.fuzzy,
            "imported ZooKeeper's data"
        );
        return Ok(());
    }
    let quorum_kerberos = cfg
        .quorum_sasl
        .as_deref()
        .filter(|q| zab_server::sasl_gssapi::quorum_uses_kerberos(q));
    if let Some(q) = quorum_kerberos {
        // Before any thread starts, as below.
        zab_server::sasl_gssapi::use_krb5_conf(cfg.sasl.krb5_conf.as_deref());
        zab_server::sasl_gssapi::check_quorum_logins(q).map_err(|e| {
            anyhow::anyhow!("Failed to initialize authentication mechanism using SASL: {e}")
        })?;
    }
    if let Some(k) = cfg.sasl.kerberos() {
        // Before the runtime and RocksDB start their threads: the library
        // takes its krb5.conf and keytab from the environment.
        zab_server::sasl_gssapi::install(&k).map_err(|e| {
            anyhow::anyhow!(
                "Could not configure server because SASL configuration did not allow the \
                 ZooKeeper server to authenticate itself properly: {e}"
            )
        })?;
    }
    if !cfg.unsupported.is_empty() {
        tracing::warn!(
            "zoo.cfg keys zab does not support (ignored): {}",
            cfg.unsupported.join(", ")
        );
    }
    zab_server::stage_trace::start_from_env().map_err(anyhow::Error::msg)?;
    let runtime = zab_server::server::runtime(cfg.worker_threads)?;
    let served = runtime.block_on(async move {
        if cfg.is_distributed() {
            let server = QuorumServer::start(cfg).await?;
            wait_for_signal().await?;
            tracing::info!("shutting down");
            server.shutdown().await;
        } else {
            let server = Server::start(cfg).await?;
            wait_for_signal().await?;
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        anyhow::Ok(())
    });
    zab_server::stage_trace::finish();
    served
}

/// Where the configuration comes from.
enum ConfigSource {
    /// A zoo.cfg, as `QuorumPeerMain zoo.cfg`.
    File(PathBuf),
    /// zoo.cfg text made of a standalone command line.
    Args(String),
}

/// `port dataDir [tickTime] [maxClientCnxns]`, the standalone command line
/// `QuorumPeerMain` hands to `ZooKeeperServerMain` (`ServerConfig.parse`):
/// the log beside the snapshots, and no per-client connection limit unless
/// given (`ServerConfig` leaves `maxClientCnxns` at 0 there, not 60).
fn standalone_cfg(args: &[std::ffi::OsString]) -> String {
    let arg = |i: usize| args.get(i).map(|a| a.to_string_lossy().into_owned());
    // A zoo.cfg value reads backslashes as escapes.
    let dir = arg(1).unwrap_or_default().replace('\\', "\\\\");
    let mut cfg = format!(
        "clientPort={}\ndataDir={dir}\nmaxClientCnxns={}\n",
        arg(0).unwrap_or_default(),
        arg(3).unwrap_or_else(|| "0".to_owned())
    );
    if let Some(tick) = arg(2) {
        cfg.push_str(&format!("tickTime={tick}\n"));
    }
    cfg
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// glibc raises its mmap threshold each time a large block is freed, after
/// which big short-lived buffers come from the heap and leave holes it
/// never returns: measured at 1M znodes, 100–140 MiB per server when zab
/// itself still used glibc (BENCHMARKS.md, "Memory"). RocksDB's memtable
/// and block buffers still come from glibc; a fixed threshold keeps them in
/// their own maps.
fn fix_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::standalone_cfg;
    use zab_server::config::Config;

    /// `zab-server port dataDir [tickTime] [maxClientCnxns]` configures a
    /// standalone server as `ServerConfig.parse` does: no per-client limit
    /// unless given, the log beside the snapshots.
    #[test]
    fn a_standalone_command_line_reads_as_server_config_parses_it() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let c = Config::parse(&standalone_cfg(&args(&["2191", "/var/zk"])), None).unwrap();
        assert_eq!(c.client_port, Some(2191));
        assert_eq!(c.data_dir, std::path::Path::new("/var/zk"));
        assert_eq!(c.data_log_dir, c.data_dir);
        assert_eq!((c.tick_time_ms, c.max_client_cnxns), (3000, 0));
        assert!(!c.is_distributed());
        let c = Config::parse(
            &standalone_cfg(&args(&["2191", r"C:\zk", "1000", "7"])),
            None,
        )
        .unwrap();
        assert_eq!(c.data_dir, std::path::Path::new(r"C:\zk"));
        assert_eq!((c.tick_time_ms, c.max_client_cnxns), (1000, 7));
        assert_eq!(c.min_session_timeout_ms, 2000);
        assert!(Config::parse(&standalone_cfg(&args(&["port", "/d"])), None).is_err());
        assert!(Config::parse(&standalone_cfg(&args(&["2191", "/d", "often"])), None).is_err());
    }
}
