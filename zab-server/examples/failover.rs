//! Failover and catch-up figures for a local 3-node ensemble of real
//! processes:
//!
//! ```text
//! cargo run --release -p zab-server --example failover -- \
//!     [--rounds 5] [--catch-up-rounds 3] [--catch-up-writes 10000] [--under-load]
//! ```
//!
//! * **failover time**: from `kill -9` of the leader to the first write a
//!   client (connected to every server) sees succeed. By default the leader
//!   is killed once the ensemble is quiet (every server at the same zxid) and
//!   the client starts writing at the moment of the kill; `--under-load`
//!   kills it while a writer keeps a write in flight.
//! * **catch-up time**: a follower is killed, the others take
//!   `--catch-up-writes` writes, the follower is restarted; from the restart
//!   to its `srvr` Zxid equalling the leader's (process start, recovery,
//!   election, sync).
//!
//! The servers are this example's own executable re-run with `--serve
//! zoo.cfg` (the same library code as the `zab-server` binary, which cargo
//! does not build for examples), or the binary named by `ZAB_SERVER_BIN`;
//! `ZAB_TEST_TARGET=zookeeper` measures Apache ZooKeeper 3.8 instead.
//! The ensemble is the test harness of `tests/support/cluster.rs`.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cluster::{ClusterSpec, ServerCommand, TestCluster};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

/// How long one round may take to fail over before it is reported as failed.
const ROUND_DEADLINE: Duration = Duration::from_secs(30);
/// How long a write may take before it is retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the ensemble gets to form and converge between rounds.
const SETTLE: Duration = Duration::from_secs(60);

struct Options {
    rounds: usize,
    catch_up_rounds: usize,
    catch_up_writes: usize,
    under_load: bool,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let cfg = args.get(1).context("--serve needs the path of zoo.cfg")?;
        return serve(PathBuf::from(cfg));
    }
    let mut opts = Options {
        rounds: 5,
        catch_up_rounds: 3,
        catch_up_writes: 10_000,
        under_load: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--rounds" => opts.rounds = number("--rounds")?,
            "--catch-up-rounds" => opts.catch_up_rounds = number("--catch-up-rounds")?,
            "--catch-up-writes" => opts.catch_up_writes = number("--catch-up-writes")?,
            "--under-load" => opts.under_load = true,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(measure(opts))
}

/// `--serve zoo.cfg`: what the `zab-server` binary does for a replicated
/// configuration.
fn serve(path: PathBuf) -> anyhow::Result<()> {
    use zab_server::config::Config;
    use zab_server::quorum::QuorumServer;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ZAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cfg = Config::load(&path).with_context(|| format!("reading {}", path.display()))?;
    cfg.validate()?;
    zab_server::server::runtime(cfg.worker_threads)?.block_on(async move {
        let server = QuorumServer::start(cfg).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        term.recv().await;
        server.shutdown().await;
        anyhow::Ok(())
    })
}

fn server_command() -> anyhow::Result<ServerCommand> {
    // The same figures for Apache ZooKeeper 3.8 (the Debian package).
    if matches!(
        std::env::var("ZAB_TEST_TARGET").as_deref(),
        Ok("zookeeper") | Ok("zk")
    ) {
        return Ok(ServerCommand::with_args(
            "java",
            [
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-cp",
                "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ],
        ));
    }
    if let Some(bin) = std::env::var_os("ZAB_SERVER_BIN") {
        return Ok(ServerCommand::binary(bin));
    }
    let me = std::env::current_exe().context("locating this executable")?;
    Ok(ServerCommand::with_args(me, ["--serve"]))
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn connect(connect_string: &str) -> anyhow::Result<Client> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let attempt = Client::connector()
            .with_session_timeout(Duration::from_secs(20))
            .connect(connect_string);
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(client)) => return Ok(client),
            _ if Instant::now() > deadline => anyhow::bail!("no session from {connect_string}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// One failover round's figures.
struct Round {
    killed_sid: u64,
    failover: Option<Duration>,
    new_leader_sid: Option<u64>,
    new_epoch: Option<u32>,
}

async fn measure(opts: Options) -> anyhow::Result<()> {
    // Sessions must outlive a failover so that the figures measure the
    // ensemble, not the client re-creating sessions.
    let mut spec = ClusterSpec::new(server_command()?, 3);
    // Three servers share this machine: each gets its share of the CPUs,
    // as `cargo xtask cluster` and `cargo xtask bench` give them.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    spec.extra_cfg = format!(
        "maxSessionTimeout=60000\nzab.workerThreads={}",
        (cpus / 3).max(1)
    );
    let mut cluster = TestCluster::start(spec);
    blocking(|| cluster.wait_until_serving(SETTLE));
    println!(
        "3-node ensemble, tickTime={} ms, initLimit={}, syncLimit={}; {}",
        cluster.spec().tick_time_ms,
        cluster.spec().init_limit,
        cluster.spec().sync_limit,
        if opts.under_load {
            "leader killed with a write in flight"
        } else {
            "leader killed when quiet, client writing from the kill on"
        }
    );
    let client = connect(&cluster.connect_string()).await?;
    client.create("/failover", b"", &persistent()).await?;

    let mut rounds = Vec::new();
    let mut seq = 0u64;
    for round in 1..=opts.rounds {
        blocking(|| {
            cluster.wait_until_serving(SETTLE);
            cluster.wait_until_converged(SETTLE);
        });
        let old = blocking(|| cluster.leader()).context("no leader")?;
        let old_epoch = cluster.status(old).map_or(0, |s| s.epoch());
        let background = opts.under_load.then(|| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    let path = format!("/failover/bg-{round}-{n}");
                    let _ = tokio::time::timeout(
                        WRITE_TIMEOUT,
                        client.create(&path, b"", &persistent()),
                    )
                    .await;
                    n += 1;
                }
            })
        });
        if background.is_some() {
            // Let the background writer get going.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        blocking(|| cluster.kill9(old));
        let killed_at = Instant::now();
        let mut failover = None;
        while killed_at.elapsed() < ROUND_DEADLINE {
            seq += 1;
            let path = format!("/failover/r{round}-{seq}");
            let write = tokio::time::timeout(
                WRITE_TIMEOUT,
                client.create(&path, b"after the kill", &persistent()),
            )
            .await;
            if let Ok(Ok(_)) = write {
                failover = Some(killed_at.elapsed());
                break;
            }
        }
        if let Some(bg) = background {
            bg.abort();
        }
        let new = blocking(|| cluster.leader());
        let new_epoch = new.and_then(|n| cluster.status(n)).map(|s| s.epoch());
        let r = Round {
            killed_sid: cluster.sid(old),
            failover,
            new_leader_sid: new.map(|n| cluster.sid(n)),
            new_epoch,
        };
        match r.failover {
            Some(d) => eprintln!(
                "round {round}: killed leader {} (epoch {old_epoch}), first write after {} ms",
                r.killed_sid,
                d.as_millis()
            ),
            None => eprintln!(
                "round {round}: killed leader {}; no write succeeded within {ROUND_DEADLINE:?}\n{}",
                r.killed_sid,
                blocking(|| cluster.report())
            ),
        }
        rounds.push(r);
        blocking(|| cluster.restart(old));
        if failover.is_none() {
            // The survivors are stuck; restart them so later rounds measure
            // something rather than the same hang.
            for i in cluster.indices() {
                blocking(|| cluster.restart(i));
            }
        }
    }

    let mut catch_ups = Vec::new();
    for round in 1..=opts.catch_up_rounds {
        blocking(|| {
            cluster.wait_until_serving(SETTLE);
            cluster.wait_until_converged(SETTLE);
        });
        let leader = blocking(|| cluster.leader()).context("no leader")?;
        let follower = (leader + 1) % cluster.len();
        blocking(|| cluster.kill9(follower));
        let writer = connect(&cluster.connect_string_of(leader)).await?;
        let parent = format!("/catchup{round}");
        writer.create(&parent, b"", &persistent()).await?;
        write_many(&writer, &parent, opts.catch_up_writes).await?;
        let leader_zxid = cluster.zxid(leader).context("leader answers srvr")?;
        let restarted_at = Instant::now();
        blocking(|| cluster.restart(follower));
        let mut caught_up = None;
        while restarted_at.elapsed() < SETTLE {
            if cluster.zxid(follower) == Some(leader_zxid) {
                caught_up = Some(restarted_at.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "catch-up {round}: follower {} missed {} writes, caught up after {}",
            cluster.sid(follower),
            opts.catch_up_writes,
            caught_up.map_or("never".into(), |d| format!("{} ms", d.as_millis()))
        );
        catch_ups.push(caught_up);
    }

    println!();
    println!("| round | killed leader | new leader | new epoch | failover to first write (ms) |");
    println!("|------:|--------------:|-----------:|----------:|-----------------------------:|");
    for (k, r) in rounds.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} |",
            k + 1,
            r.killed_sid,
            r.new_leader_sid.map_or("-".into(), |s| s.to_string()),
            r.new_epoch.map_or("-".into(), |e| e.to_string()),
            r.failover
                .map_or("no failover".into(), |d| d.as_millis().to_string())
        );
    }
    println!(
        "median failover: {}",
        median(rounds.iter().filter_map(|r| r.failover))
    );
    println!();
    println!("| round | missed writes | catch-up (ms) |");
    println!("|------:|--------------:|--------------:|");
    for (k, c) in catch_ups.iter().enumerate() {
        println!(
            "| {} | {} | {} |",
            k + 1,
            opts.catch_up_writes,
            c.map_or("never".into(), |d| d.as_millis().to_string())
        );
    }
    println!(
        "median catch-up: {}",
        median(catch_ups.iter().filter_map(|c| *c))
    );
    Ok(())
}

/// `count` creates under `parent`, pipelined over 16 lanes of one session.
async fn write_many(client: &Client, parent: &str, count: usize) -> anyhow::Result<()> {
    let lanes = 16;
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let (client, parent) = (client.clone(), parent.to_string());
        tasks.spawn(async move {
            for n in (lane..count).step_by(lanes) {
                client
                    .create(&format!("{parent}/n{n:06}"), b"missed", &persistent())
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

fn median(values: impl Iterator<Item = Duration>) -> String {
    let mut v: Vec<Duration> = values.collect();
    if v.is_empty() {
        return "n/a".into();
    }
    v.sort();
    let mid = v.len() / 2;
    let m = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2
    } else {
        v[mid]
    };
    format!("{} ms (of {} rounds)", m.as_millis(), v.len())
}
