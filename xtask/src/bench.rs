//! `cargo xtask bench`: builds the `zab-load` generator in release and runs
//! it; with `--compare zookeeper`, against a local zab ensemble and a
//! ZooKeeper 3.8 ensemble of the same shape and durability, taking turns
//! (`--rounds`), side by side;
//! with `--compare zab:PATH`, against another build of zab-server (an A/B
//! of two versions, the way every change in BENCHMARKS.md is measured).
//!
//! This module only builds, starts, measures and stops processes; the load
//! itself and its statistics live in `benches/src/load/`. It reads the
//! generator's JSON summary with a few string searches so that xtask keeps
//! no dependency beyond libc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask bench [bench options] [zab-load options]

Without --compare: builds zab-load in release and runs it with the
zab-load options against --hosts (see `cargo xtask bench -- --help`).

bench options:
  --compare zookeeper  start a zab ensemble (release) and a ZooKeeper 3.8 one
                       (if /usr/share/zookeeper is installed), run the loads
                       on each in turn (see --rounds), record RSS per
                       server, stop them; print both side by side
  --compare zab:PATH   the same against the zab-server binary at PATH (a
                       baseline build, e.g. from `git worktree add` of an
                       older commit) instead of ZooKeeper: an A/B of two
                       zab versions (raise --rounds for small differences)
  --suite              the loads of the targets instead of one load:
                       set 32x8, set 1x1, get 32x8, mixed 90% reads 32x8
  --memory N           instead of timed loads, create N znodes of 100 B and
                       report RSS per server (implies --compare zookeeper)
  --rounds N           compare mode: both ensembles up at once, each load run
                       N times alternately (zab, ZooKeeper; ZooKeeper, zab;
                       zab, ZooKeeper; ...); the table shows the medians
                       and every round's ratio, so a minute in which the
                       machine runs slow (it varies by tens of percent on
                       a shared VM) weighs on both systems alike (default
                       3 when two systems are compared, else 1; --rounds 1:
                       one system after the other)
  --warmup-rounds N    with rounds (above 1): before the rounds of each load,
                       run it N times per system unrecorded (default 1
                       against ZooKeeper, whose JIT was still warming up
                       in the second round on 2026-12-05; 0 against
                       zab:PATH)
  --nodes N            voting servers per ensemble (default 3)
  --tick-time MS       tickTime of both ensembles (default 2000)
  --only zab|zookeeper compare mode, one system only
  --zab-cfg K=V        add a zoo.cfg line for zab's servers (repeatable)
  --stage-trace        zab alone, one load: build zab-server with its
                       `stage-trace` feature (into target/stage-trace,
                       leaving target/release alone) and print, for the
                       txns the leader proposed in the measured window,
                       when each later stage (sync, link, ACK, commit)
                       covered them on each server (BENCHMARKS.md, 'stage
                       by stage')
  --zk-cfg K=V         add a zoo.cfg line for ZooKeeper's servers (repeatable),
                       e.g. --zk-cfg flushDelay=1 to give it zab's group commit
                       delay (its own default is 0; zab's is 1 ms)
  --zk-jvm K=V         a system property for ZooKeeper's JVMs (repeatable), e.g.
                       --zk-jvm java.security.auth.login.config=FILE for the
                       JAAS file of quorum SASL (zab reads that key from zoo.cfg)

zab-load options pass through, e.g. --duration 15 --value-size 100.
Both ensembles use forceSync=yes (fsync before ack). The servers share
this machine, so zab's servers get zab.workerThreads = CPUs / nodes (at least 1);
ZooKeeper keeps its defaults.
";

/// Rounds of a comparison of two systems when `--rounds` is not given:
/// the median of three interleaved rounds is not swayed by one minute in
/// which the shared machine ran slow. (ZooKeeper's JIT-cold first load,
/// ≈ 25 % slower than its later runs, is kept out of them by the warm-up
/// round, see [`warmup_rounds`].)
const DEFAULT_ROUNDS: usize = 3;

const ZK_SCRIPT: &str = "/usr/share/zookeeper/bin/zkServer.sh";
const ZK_CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Zab,
    ZooKeeper,
    /// Another zab-server binary (`--compare zab:PATH`), configured as zab.
    Baseline,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Zab => "zab",
            System::ZooKeeper => "zookeeper",
            System::Baseline => "baseline",
        }
    }

    /// The name in the results table's column heads.
    fn short_name(self) -> &'static str {
        match self {
            System::Zab => "zab",
            System::ZooKeeper => "zk",
            System::Baseline => "base",
        }
    }
}

struct Options {
    compare: bool,
    suite: bool,
    memory: Option<u64>,
    /// Runs of each load per system; above 1, interleaved.
    rounds: usize,
    /// Whether `--rounds` was given (else two systems get
    /// [`DEFAULT_ROUNDS`]).
    rounds_given: bool,
    /// `--warmup-rounds`: unrecorded runs of each load per system before
    /// its rounds; `None` for the default (see [`warmup_rounds`]).
    warmup_rounds: Option<usize>,
    nodes: usize,
    tick_time: u32,
    only: Option<System>,
    /// `--compare zab:PATH`: the zab-server to compare against instead of
    /// ZooKeeper.
    baseline: Option<PathBuf>,
    /// Extra zoo.cfg lines, per system.
    zab_cfg: Vec<String>,
    zk_cfg: Vec<String>,
    /// `--zk-jvm K=V`: system properties for ZooKeeper's JVMs (`-DK=V`).
    zk_jvm: Vec<String>,
    /// `--stage-trace`: zab's servers record their stage traces.
    stage_trace: bool,
    /// Everything else, for zab-load.
    load_args: Vec<String>,
}

/// A `--zab-cfg`/`--zk-cfg` value: one `key=value` zoo.cfg line.
fn cfg_line(v: &str) -> Result<String, String> {
    match v.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() && !v.contains('\n') => Ok(v.to_owned()),
        _ => Err(format!("expected key=value, not `{v}`")),
    }
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        compare: false,
        suite: false,
        memory: None,
        rounds: 1,
        rounds_given: false,
        warmup_rounds: None,
        nodes: 3,
        tick_time: 2000,
        only: None,
        baseline: None,
        zab_cfg: Vec::new(),
        zk_cfg: Vec::new(),
        zk_jvm: Vec::new(),
        stage_trace: false,
        load_args: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            // Everything after `--` is zab-load's, `--help` included.
            o.load_args.extend(it.by_ref().cloned());
            break;
        }
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--compare" => {
                let v = value("--compare")?;
                match v.as_str() {
                    "zookeeper" | "zk" => o.baseline = None,
                    other => match other.strip_prefix("zab:") {
                        Some(path) if !path.is_empty() => o.baseline = Some(PathBuf::from(path)),
                        _ => {
                            return Err(format!(
                                "--compare: `zookeeper` or `zab:PATH`, not `{other}`"
                            ))
                        }
                    },
                }
                o.compare = true;
            }
            "--suite" => o.suite = true,
            "--stage-trace" => o.stage_trace = true,
            "--memory" => o.memory = Some(crate::cluster::number(&value("--memory")?, "--memory")?),
            "--nodes" => o.nodes = crate::cluster::number(&value("--nodes")?, "--nodes")?,
            "--rounds" => {
                o.rounds = crate::cluster::number(&value("--rounds")?, "--rounds")?;
                o.rounds_given = true;
            }
            "--warmup-rounds" => {
                let n = value("--warmup-rounds")?;
                o.warmup_rounds = Some(
                    n.parse()
                        .map_err(|_| format!("--warmup-rounds: a number of rounds, not `{n}`"))?,
                );
            }
            "--tick-time" => {
                o.tick_time = crate::cluster::number(&value("--tick-time")?, "--tick-time")?
            }
            "--only" => {
                o.only = Some(match value("--only")?.as_str() {
                    "zab" => System::Zab,
                    "zookeeper" | "zk" => System::ZooKeeper,
                    other => return Err(format!("--only: `zab` or `zookeeper`, not `{other}`")),
                })
            }
            "--zab-cfg" => o.zab_cfg.push(cfg_line(&value("--zab-cfg")?)?),
            "--zk-cfg" => o.zk_cfg.push(cfg_line(&value("--zk-cfg")?)?),
            "--zk-jvm" => o.zk_jvm.push(cfg_line(&value("--zk-jvm")?)?),
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            _ => o.load_args.push(a.clone()),
        }
    }
    if o.stage_trace {
        if o.suite || o.memory.is_some() || o.baseline.is_some() || o.rounds > 1 {
            return Err("--stage-trace traces one load on zab alone: \
                        drop --suite, --memory, --compare and --rounds"
                .into());
        }
        if o.only == Some(System::ZooKeeper) {
            return Err("--stage-trace traces zab's servers".into());
        }
        o.only = Some(System::Zab);
    }
    if o.memory.is_some() || o.only.is_some() {
        o.compare = true;
    }
    if o.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if o.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if o.rounds > 1 {
        if o.memory.is_some() {
            return Err("--rounds times loads; --memory measures one load's RSS".into());
        }
        o.compare = true;
    }
    if o.baseline.is_some() && o.only.is_some() {
        return Err(
            "--only picks a system of --compare zookeeper; zab:PATH compares two zabs".into(),
        );
    }
    if o.compare && o.load_args.iter().any(|a| a == "--hosts") {
        return Err("--compare starts its own ensembles: drop --hosts".into());
    }
    Ok(Some(o))
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(mut opts) = parse(args)? else {
        return Ok(());
    };
    let load = build("zab-benches", "zab-load", RELEASE)?;
    if !opts.compare {
        let status = Command::new(&load)
            .args(&opts.load_args)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", load.display()))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("zab-load failed ({status})"))
        };
    }

    let mut systems = Vec::new();
    if opts.only != Some(System::ZooKeeper) {
        systems.push(System::Zab);
    }
    if let Some(path) = &opts.baseline {
        if !path.is_file() {
            return Err(format!("--compare zab:{}: no such file", path.display()));
        }
        systems.push(System::Baseline);
    } else if opts.only != Some(System::Zab) {
        if Path::new(ZK_SCRIPT).exists() {
            systems.push(System::ZooKeeper);
        } else {
            eprintln!("bench: {ZK_SCRIPT} not found: measuring zab only");
        }
    }
    opts.rounds = rounds_for(&opts, systems.len());
    let zab_server = if systems.contains(&System::Zab) {
        Some(if opts.stage_trace {
            build("zab-server", "zab-server", STAGE_TRACE_BUILD)?
        } else {
            build("zab-server", "zab-server", RELEASE)?
        })
    } else {
        None
    };

    let root = std::env::temp_dir().join(format!("zab-bench-{}", std::process::id()));
    let loads = loads(&opts);
    let mut results = Vec::new();
    if opts.rounds > 1 {
        let result =
            measure_interleaved(&systems, &opts, &loads, &load, zab_server.as_deref(), &root);
        // Both ensembles' data go, whether the runs worked or not.
        let _ = std::fs::remove_dir_all(&root);
        results = result?;
    } else {
        for system in systems {
            let result = measure(system, &opts, &loads, &load, zab_server.as_deref(), &root);
            let _ = std::fs::remove_dir_all(root.join(system.name()));
            results.push(result?);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    print!("{}", side_by_side(&opts, &loads, &results));
    Ok(())
}

/// One load of a comparison: a name and its zab-load arguments.
struct Load {
    name: String,
    args: Vec<String>,
}

fn loads(opts: &Options) -> Vec<Load> {
    let args = |list: &[&str]| -> Vec<String> {
        list.iter()
            .map(|s| s.to_string())
            .chain(opts.load_args.iter().cloned())
            .collect()
    };
    if let Some(n) = opts.memory {
        let n = n.to_string();
        return vec![Load {
            name: format!("create {n} znodes of 100 B"),
            args: args(&[
                "--keys",
                &n,
                "--duration",
                "0",
                "--value-size",
                "100",
                "--clients",
                "32",
                "--inflight",
                "8",
            ]),
        }];
    }
    if !opts.suite {
        return vec![Load {
            name: opts.load_args.join(" "),
            args: args(&[]),
        }];
    }
    // The targets of issue 4: 100-byte values, 32 sessions x 8 in flight.
    let common = ["--value-size", "100", "--keys", "10000"];
    [
        (
            "set 32x8",
            vec!["--op", "set", "--clients", "32", "--inflight", "8"],
        ),
        (
            "set 1x1",
            vec!["--op", "set", "--clients", "1", "--inflight", "1"],
        ),
        (
            "get 32x8",
            vec!["--op", "get", "--clients", "32", "--inflight", "8"],
        ),
        (
            "mixed 90% 32x8",
            vec![
                "--op",
                "mixed",
                "--read-ratio",
                "0.9",
                "--clients",
                "32",
                "--inflight",
                "8",
            ],
        ),
    ]
    .into_iter()
    .map(|(name, mut a)| {
        a.extend(common);
        Load {
            name: name.into(),
            args: args(&a),
        }
    })
    .collect()
}

/// What one system did: per load, the summary's `total` figures; RSS per
/// server after everything ran.
struct Measured {
    system: System,
    /// Per load: its figures (with `--rounds`, each the median of the rounds).
    loads: Vec<Option<Figures>>,
    /// Per load, every round's figures (`--rounds` above 1; else empty).
    rounds: Vec<Vec<Option<Figures>>>,
    /// Seconds each load spent creating its keys.
    setup_s: Vec<Option<f64>>,
    rss_start_kib: Vec<Option<u64>>,
    rss_end_kib: Vec<Option<u64>>,
    /// The CPUs this system's idle servers used, on average, while the
    /// other system ran its loads (compare mode): what they took from the
    /// machine the other was measured on.
    idle_cpus: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    errors: bool,
    /// The servers' CPU time (user + system, all servers) in the measured
    /// window per op done in it: steadier than ops/s on a shared VM, whose
    /// speed drifts by tens of percent between minutes.
    cpu_us_per_op: Option<f64>,
    /// The measured window (after set-up and warm-up), unix ns.
    window_unix_ns: Option<(u64, u64)>,
}

/// An ensemble up for measuring, with what was recorded at its start.
struct Running {
    system: System,
    ensemble: Ensemble,
    hosts: String,
    rss_start_kib: Vec<Option<u64>>,
}

fn start(
    system: System,
    opts: &Options,
    zab_server: Option<&Path>,
    root: &Path,
) -> Result<Running, String> {
    println!(
        "\n=== {} ensemble: {} nodes, forceSync=yes ===",
        system.name(),
        opts.nodes
    );
    let mut ensemble = Ensemble::start(system, opts, zab_server, &root.join(system.name()))?;
    ensemble.wait_ready(Duration::from_secs(90))?;
    Ok(Running {
        system,
        rss_start_kib: ensemble.rss_kib(),
        hosts: ensemble.hosts(),
        ensemble,
    })
}

/// How often the servers' CPU time is read while a load runs.
const CPU_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// CPU ticks spent between `from` and `to` (seconds since the samples'
/// origin), interpolated linearly between the samples around each end;
/// `None` unless the samples cover both ends.
fn cpu_between(samples: &[(f64, u64)], from: f64, to: f64) -> Option<f64> {
    let at = |t: f64| -> Option<f64> {
        let i = samples.iter().position(|&(s, _)| s >= t)?;
        let (t1, c1) = samples[i];
        if i == 0 {
            return (t1 == t).then_some(c1 as f64);
        }
        let (t0, c0) = samples[i - 1];
        let share = if t1 > t0 { (t - t0) / (t1 - t0) } else { 1.0 };
        Some(c0 as f64 + share * (c1 as f64 - c0 as f64))
    };
    Some(at(to)? - at(from)?)
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/PID/stat`'s CPU times.
fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// User plus system CPU ticks of a process, from `/proc/PID/stat`.
fn process_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is the first, utime the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// One run of a load: its figures and the seconds its set-up took (both
/// `None` when zab-load failed).
type Run = (Option<Figures>, Option<f64>);

/// Runs one load against `r`.
fn run_load(
    r: &mut Running,
    load: &Load,
    run: &str,
    load_bin: &Path,
    root: &Path,
) -> Result<Run, String> {
    let system = r.system.name();
    println!("--- {system}: {}", load.name);
    let json = root.join(format!("{system}-{run}.json"));
    let started = Instant::now();
    let started_unix_ns = unix_ns();
    let mut child = Command::new(load_bin)
        .args(&load.args)
        .args(["--hosts", &r.hosts, "--label", system])
        .arg("--json")
        .arg(&json)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", load_bin.display()))?;
    // The servers' CPU time while the load runs, sampled so that the
    // measured window (after set-up and warm-up) can be cut out of it.
    let mut cpu = Vec::new();
    let status = loop {
        if let Some(ticks) = r.ensemble.cpu_ticks() {
            cpu.push((started.elapsed().as_secs_f64(), ticks));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(CPU_SAMPLE_EVERY),
            Err(e) => {
                let _ = child.kill();
                return Err(format!("waiting for zab-load: {e}"));
            }
        }
    };
    if !status.success() {
        eprintln!("bench: zab-load failed against {system} ({status})");
        return Ok((None, None));
    }
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    let run_info = section(&text, "\"run\"");
    let setup = run_info.and_then(|r| number_after(r, "\"setup_s\""));
    let warmup = run_info.and_then(|r| number_after(r, "\"warmup_s\""));
    let duration = run_info.and_then(|r| number_after(r, "\"duration_s\""));
    r.ensemble.check_alive()?;
    let mut figures = figures_of(&text);
    if let (Some(f), Some(setup), Some(warmup), Some(duration)) =
        (figures.as_mut(), setup, warmup, duration)
    {
        let from = setup + warmup;
        let at = |s: f64| started_unix_ns + (s * 1e9) as u64;
        f.window_unix_ns = Some((at(from), at(from + duration)));
        f.cpu_us_per_op = cpu_between(&cpu, from, from + duration)
            .map(|ticks| ticks * 1e6 / clock_ticks_per_sec())
            .and_then(|us| (f.ops_per_sec > 0.0).then(|| us / (f.ops_per_sec * duration)));
    }
    Ok((figures, setup))
}

fn finish(mut r: Running, loads: Vec<Option<Figures>>, setup_s: Vec<Option<f64>>) -> Measured {
    let rss_end_kib = r.ensemble.rss_kib();
    r.ensemble.stop();
    Measured {
        system: r.system,
        loads,
        rounds: Vec::new(),
        setup_s,
        rss_start_kib: r.rss_start_kib,
        rss_end_kib,
        idle_cpus: None,
    }
}

fn measure(
    system: System,
    opts: &Options,
    loads: &[Load],
    load_bin: &Path,
    zab_server: Option<&Path>,
    root: &Path,
) -> Result<Measured, String> {
    let mut r = start(system, opts, zab_server, root)?;
    let (mut figures, mut setup_s) = (Vec::new(), Vec::new());
    for (i, load) in loads.iter().enumerate() {
        let (f, setup) = run_load(&mut r, load, &i.to_string(), load_bin, root)?;
        figures.push(f);
        setup_s.push(setup);
    }
    let measured = finish(r, figures, setup_s);
    if opts.stage_trace {
        print_stage_report(&root.join(system.name()), opts.nodes, &measured)?;
    }
    Ok(measured)
}

/// Where each zab server writes its stage trace, in its data directory.
const STAGE_TRACE_FILE: &str = "stages.txt";

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Joins the stopped servers' stage traces (`--stage-trace`).
fn print_stage_report(dir: &Path, nodes: usize, measured: &Measured) -> Result<(), String> {
    let Some((from, to)) = measured
        .loads
        .first()
        .and_then(|f| f.as_ref())
        .and_then(|f| f.window_unix_ns)
    else {
        return Err("--stage-trace: the load reported no measured window".into());
    };
    let mut traces = Vec::new();
    for id in 1..=nodes {
        let file = dir.join(format!("node{id}")).join(STAGE_TRACE_FILE);
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        traces.push((format!("node{id}"), text));
    }
    println!("\n{}", crate::stages::report(&traces, from, to)?);
    Ok(())
}

/// How many times each load runs per system, once it is known how many
/// systems there are: `--rounds` if given; [`DEFAULT_ROUNDS`] for a
/// comparison of two systems' timed loads; else once.
fn rounds_for(opts: &Options, systems: usize) -> usize {
    if opts.rounds_given || systems < 2 || opts.memory.is_some() {
        opts.rounds
    } else {
        DEFAULT_ROUNDS
    }
}

/// Unrecorded runs of each load per system before its rounds: `--warmup-rounds`
/// if given, else one when ZooKeeper is among the systems. Three rounds
/// were meant to outvote ZooKeeper's JIT-cold first one, but on 2026-12-05
/// its second round of set 32×8 was still cold too (22.6k writes/s and
/// 80 µs of CPU per write, against 29.0k and 65 µs in the third), and the
/// median by round credited zab with 4.14× where warm rounds gave 3.25–3.71×.
fn warmup_rounds(opts: &Options, systems: &[System]) -> usize {
    opts.warmup_rounds
        .unwrap_or(usize::from(systems.contains(&System::ZooKeeper)))
}

/// `--rounds`: every system's ensemble up at once, each load run
/// `opts.rounds` times per system, the systems taking turns, after
/// [`warmup_rounds`] unrecorded ones.
fn measure_interleaved(
    systems: &[System],
    opts: &Options,
    loads: &[Load],
    load_bin: &Path,
    zab_server: Option<&Path>,
    root: &Path,
) -> Result<Vec<Measured>, String> {
    let mut running = Vec::new();
    for &system in systems {
        running.push(start(system, opts, zab_server, root)?);
    }
    // [system][load][round]
    let mut runs: Vec<Vec<Vec<Run>>> = vec![vec![Vec::new(); loads.len()]; running.len()];
    // Per system: CPU ticks its servers used while another system's
    // measured rounds ran, and over how many seconds.
    let mut idle = vec![(0u64, 0f64); running.len()];
    let warmups = warmup_rounds(opts, systems);
    for (i, load) in loads.iter().enumerate() {
        for w in 0..warmups {
            for k in turn_order(running.len(), w) {
                println!("(warm-up, not counted)");
                let run = format!("{i}-warmup{w}");
                run_load(&mut running[k], load, &run, load_bin, root)?;
            }
        }
        for round in 0..opts.rounds {
            // Who goes first alternates too: a run just after the other
            // system's may find the machine in a different state (page
            // cache, the other's background flushes).
            for k in turn_order(running.len(), round) {
                let run = format!("{i}-{round}");
                let before: Vec<Option<u64>> =
                    running.iter().map(|r| r.ensemble.cpu_ticks()).collect();
                let started = Instant::now();
                runs[k][i].push(run_load(&mut running[k], load, &run, load_bin, root)?);
                let secs = started.elapsed().as_secs_f64();
                for (j, r) in running.iter().enumerate() {
                    if let (true, Some(b), Some(a)) = (j != k, before[j], r.ensemble.cpu_ticks()) {
                        idle[j].0 += a.saturating_sub(b);
                        idle[j].1 += secs;
                    }
                }
            }
        }
    }
    let mut results = Vec::new();
    for ((r, per_load), (ticks, secs)) in running.into_iter().zip(runs).zip(idle) {
        let rounds: Vec<Vec<Option<Figures>>> = per_load
            .iter()
            .map(|rs| rs.iter().map(|(f, _)| *f).collect())
            .collect();
        let medians = rounds.iter().map(|rs| median_figures(rs)).collect();
        let setup_s = per_load
            .iter()
            .map(|rs| rs.first().and_then(|(_, s)| *s))
            .collect();
        let mut m = finish(r, medians, setup_s);
        m.rounds = rounds;
        m.idle_cpus = (secs > 0.0).then(|| ticks as f64 / clock_ticks_per_sec() / secs);
        results.push(m);
    }
    Ok(results)
}

/// The order in which `systems` ensembles run in round `round`: as given
/// in even rounds, reversed in odd ones.
fn turn_order(systems: usize, round: usize) -> Vec<usize> {
    let order = 0..systems;
    if round.is_multiple_of(2) {
        order.collect()
    } else {
        order.rev().collect()
    }
}

/// Each figure's median over the rounds that produced figures (`None` if
/// none did); errors if any round had them.
fn median_figures(rounds: &[Option<Figures>]) -> Option<Figures> {
    let got: Vec<Figures> = rounds.iter().flatten().copied().collect();
    if got.is_empty() {
        return None;
    }
    let of = |field: fn(&Figures) -> f64| median(got.iter().map(field).collect()).unwrap_or(0.0);
    Some(Figures {
        ops_per_sec: of(|f| f.ops_per_sec),
        p50_us: of(|f| f.p50_us),
        p99_us: of(|f| f.p99_us),
        p999_us: of(|f| f.p999_us),
        errors: got.iter().any(|f| f.errors),
        cpu_us_per_op: median(got.iter().filter_map(|f| f.cpu_us_per_op).collect()),
        window_unix_ns: None,
    })
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

/// The `total` figures of a zab-load JSON summary.
fn figures_of(json: &str) -> Option<Figures> {
    let total = section(json, "\"total\"")?;
    let errors = section(json, "\"errors\"").is_some_and(|e| e.contains(':'));
    Some(Figures {
        ops_per_sec: number_after(total, "\"ops_per_sec\"")?,
        p50_us: number_after(total, "\"p50_us\"")?,
        p99_us: number_after(total, "\"p99_us\"")?,
        p999_us: number_after(total, "\"p999_us\"")?,
        errors,
        cpu_us_per_op: None,
        window_unix_ns: None,
    })
}

/// The `{...}` object following `key` (no nested objects expected).
fn section<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(key)?;
    let rest = &json[at + key.len()..];
    let open = rest.find('{')?;
    let close = rest[open..].find('}')?;
    Some(&rest[open..open + close + 1])
}

fn number_after(text: &str, key: &str) -> Option<f64> {
    let at = text.find(key)?;
    let rest = text[at + key.len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == '+'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn side_by_side(opts: &Options, loads: &[Load], results: &[Measured]) -> String {
    let mut s = String::from("\n=== results ===\n");
    let zab = results.iter().find(|m| m.system == System::Zab);
    // What zab is compared with: ZooKeeper, or a baseline build of zab.
    let them = results.iter().find(|m| m.system != System::Zab);
    let other = them.map_or(System::ZooKeeper, |m| m.system).short_name();
    if opts.memory.is_none() {
        s.push_str(&format!(
            "{:<22} {:>10} {:>10} {:>7} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6}\n",
            "load",
            "zab op/s",
            format!("{other} op/s"),
            "x",
            "zab p50",
            format!("{other} p50"),
            "ratio",
            "zab p99",
            format!("{other} p99"),
            "ratio"
        ));
        for (i, load) in loads.iter().enumerate() {
            let a = zab.and_then(|m| m.loads.get(i).copied().flatten());
            let b = them.and_then(|m| m.loads.get(i).copied().flatten());
            let f = |v: Option<f64>, scale: f64, prec: usize| {
                v.map(|v| format!("{:.*}", prec, v / scale))
                    .unwrap_or_else(|| "-".into())
            };
            let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                _ => "-".into(),
            };
            let name: String = load.name.chars().take(22).collect();
            s.push_str(&format!(
                "{:<22} {:>10} {:>10} {:>7} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6}\n",
                name,
                f(a.map(|f| f.ops_per_sec), 1.0, 0),
                f(b.map(|f| f.ops_per_sec), 1.0, 0),
                ratio(a.map(|f| f.ops_per_sec), b.map(|f| f.ops_per_sec)),
                f(a.map(|f| f.p50_us), 1000.0, 2),
                f(b.map(|f| f.p50_us), 1000.0, 2),
                ratio(a.map(|f| f.p50_us), b.map(|f| f.p50_us)),
                f(a.map(|f| f.p99_us), 1000.0, 2),
                f(b.map(|f| f.p99_us), 1000.0, 2),
                ratio(a.map(|f| f.p99_us), b.map(|f| f.p99_us)),
            ));
            if let (Some(za), Some(zb)) = (zab, them) {
                if opts.rounds > 1 {
                    // Each round pairs runs a minute apart: their ratios
                    // are the figures to trust; the ratio of medians above
                    // may pair runs of different minutes.
                    let paired: Vec<Option<f64>> = za
                        .rounds
                        .get(i)
                        .into_iter()
                        .flatten()
                        .zip(zb.rounds.get(i).into_iter().flatten())
                        .map(|(x, y)| match (x, y) {
                            (Some(x), Some(y)) if y.ops_per_sec > 0.0 => {
                                Some(x.ops_per_sec / y.ops_per_sec)
                            }
                            _ => None,
                        })
                        .collect();
                    let shown: Vec<String> = paired
                        .iter()
                        .map(|x| x.map_or_else(|| "-".into(), |x| format!("{x:.2}")))
                        .collect();
                    let median = median(paired.into_iter().flatten().collect())
                        .map_or_else(|| "-".into(), |x| format!("{x:.2}"));
                    s.push_str(&format!(
                        "  x by round: {} (median {median})\n",
                        shown.join(" ")
                    ));
                }
            }
            if let (Some(x), Some(y)) = (
                a.and_then(|f| f.cpu_us_per_op),
                b.and_then(|f| f.cpu_us_per_op),
            ) {
                s.push_str(&format!(
                    "  servers' CPU per op: zab {x:.1} us, {other} {y:.1} us (ratio {:.2})\n",
                    x / y
                ));
            }
            for (m, f) in [(zab, a), (them, b)] {
                if let (Some(m), Some(f)) = (m, f) {
                    if f.errors {
                        s.push_str(&format!(
                            "  ({} reported errors: see its table above)\n",
                            m.system.name()
                        ));
                    }
                }
            }
        }
        s.push_str(&format!(
            "latencies in ms; x = zab/{other} throughput, ratio = zab/{other} latency\n"
        ));
        if opts.rounds > 1 {
            let systems: Vec<System> = results.iter().map(|m| m.system).collect();
            let warmups = match warmup_rounds(opts, &systems) {
                0 => String::new(),
                w => format!(" (after {w} unrecorded)"),
            };
            s.push_str(&format!(
                "each figure the median of {} interleaved rounds{warmups}\n",
                opts.rounds
            ));
        }
    }
    if let Some(n) = opts.memory {
        for m in results {
            if let Some(Some(secs)) = m.setup_s.first() {
                s.push_str(&format!(
                    "{:<10} created {n} znodes in {secs:.1} s ({:.0} creates/s)\n",
                    m.system.name(),
                    n as f64 / secs.max(f64::MIN_POSITIVE)
                ));
            }
        }
    }
    s.push_str("\nRSS per server (MiB), after start -> after the loads:\n");
    for m in results {
        let list: Vec<String> = m
            .rss_start_kib
            .iter()
            .zip(&m.rss_end_kib)
            .enumerate()
            .map(|(i, (a, b))| {
                let mib = |v: &Option<u64>| {
                    v.map(|k| format!("{:.0}", k as f64 / 1024.0))
                        .unwrap_or_else(|| "?".into())
                };
                format!("node{} {} -> {}", i + 1, mib(a), mib(b))
            })
            .collect();
        s.push_str(&format!("  {:<10} {}\n", m.system.name(), list.join(", ")));
    }
    let idle: Vec<String> = results
        .iter()
        .filter_map(|m| m.idle_cpus.map(|c| format!("{} {c:.3}", m.system.name())))
        .collect();
    if !idle.is_empty() {
        s.push_str(&format!(
            "CPUs the idle servers used while the other system ran: {}\n",
            idle.join(", ")
        ));
    }
    s
}

/// A cargo profile and the features built with it.
struct BuildKind {
    profile: &'static str,
    features: &'static [&'static str],
}

const RELEASE: BuildKind = BuildKind {
    profile: "release",
    features: &[],
};

/// The servers of `--stage-trace`, in a profile of their own (the
/// workspace's `Cargo.toml`): built into target/release they replaced the
/// release server until its next plain build.
const STAGE_TRACE_BUILD: BuildKind = BuildKind {
    profile: "stage-trace",
    features: &["stage-trace"],
};

/// Builds `bin` of `package` as `kind` says; returns its path.
fn build(package: &str, bin: &str, kind: BuildKind) -> Result<PathBuf, String> {
    let ok = crate::cargo()
        .args([
            "build",
            "--profile",
            kind.profile,
            "--package",
            package,
            "--bin",
            bin,
        ])
        .args(kind.features.iter().flat_map(|f| ["--features", f]))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?
        .success();
    if !ok {
        return Err(format!("building {bin} failed"));
    }
    Ok(crate::cluster::target_dir().join(kind.profile).join(bin))
}

struct Server {
    client_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running ensemble; dropping it stops every server.
struct Ensemble {
    system: System,
    servers: Vec<Server>,
}

impl Ensemble {
    fn start(
        system: System,
        opts: &Options,
        zab_server: Option<&Path>,
        root: &Path,
    ) -> Result<Ensemble, String> {
        let ports: Vec<(u16, u16, u16)> = crate::cluster::free_ports(3 * opts.nodes)?
            .chunks(3)
            .map(|p| (p[0], p[1], p[2]))
            .collect();
        let mut servers = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let id = i + 1;
            let dir = root.join(format!("node{id}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // The same zoo.cfg for both systems: same shape, same
            // durability (fsync before ack), same tickTime.
            let mut cfg = format!(
                "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n\
                 admin.enableServer=false\nforceSync=yes\n",
                opts.tick_time,
                dir.display(),
            );
            if opts.nodes > 1 {
                for (j, (_, quorum, election)) in ports.iter().enumerate() {
                    cfg.push_str(&format!("server.{}=127.0.0.1:{quorum}:{election}\n", j + 1));
                }
            }
            if system != System::ZooKeeper {
                // The servers share this machine: zab's default of one
                // worker per CPU assumes a machine of its own. ZooKeeper
                // keeps its defaults; its own thread settings sized the
                // same way (nio.numWorkerThreads, commitProcessor.
                // numWorkerThreads) did not make it faster here
                // (BENCHMARKS.md).
                let threads = crate::cluster::colocated_threads(opts.nodes);
                cfg.push_str(&format!("zab.workerThreads={threads}\n"));
            }
            let extra = match system {
                System::Zab | System::Baseline => &opts.zab_cfg,
                System::ZooKeeper => &opts.zk_cfg,
            };
            for line in extra {
                cfg.push_str(line);
                cfg.push('\n');
            }
            let cfg_path = dir.join("zoo.cfg");
            std::fs::write(&cfg_path, cfg).map_err(|e| format!("{}: {e}", cfg_path.display()))?;
            std::fs::write(dir.join("myid"), format!("{id}\n")).map_err(|e| e.to_string())?;
            let mut cmd = match (system, zab_server) {
                (System::Zab, Some(bin)) => Command::new(bin),
                (System::Zab, None) => return Err("zab-server was not built".into()),
                (System::Baseline, _) => match &opts.baseline {
                    Some(bin) => Command::new(bin),
                    None => return Err("no baseline zab-server given".into()),
                },
                (System::ZooKeeper, _) => {
                    // What zkServer.sh runs, minus the shell, so the child
                    // is the JVM whose RSS we read. -Xmx1000m is the heap
                    // upstream's zkEnv.sh gives a server by default.
                    let mut c = Command::new("java");
                    c.arg("-Xmx1000m")
                        .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
                        .arg("-Dzookeeper.root.logger=WARN,CONSOLE")
                        .args(opts.zk_jvm.iter().map(|p| format!("-D{p}")))
                        .args(["-cp", ZK_CLASSPATH])
                        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain");
                    c
                }
            };
            if opts.stage_trace && system == System::Zab {
                cmd.env("ZAB_STAGE_TRACE", dir.join(STAGE_TRACE_FILE));
            }
            let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
            let log2 = log.try_clone().map_err(|e| e.to_string())?;
            let child = cmd
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .map_err(|e| format!("cannot start {} node {id}: {e}", system.name()))?;
            servers.push(Server {
                client_port: *client,
                dir,
                child: Some(child),
            });
        }
        Ok(Ensemble { system, servers })
    }

    fn hosts(&self) -> String {
        let list: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.client_port))
            .collect();
        list.join(",")
    }

    /// Every server answers `srvr` with a mode, one of them the leader (or
    /// the standalone server).
    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            self.check_alive()?;
            let modes: Vec<(usize, Option<String>)> = self
                .servers
                .iter()
                .enumerate()
                .map(|(i, s)| (i + 1, crate::four_letter::mode(s.client_port)))
                .collect();
            if crate::four_letter::serving(&modes).is_some() {
                println!("{} ready: {}", self.system.name(), self.hosts());
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} ensemble not ready after {within:?}: modes {modes:?}; logs in {}",
                    self.system.name(),
                    self.servers[0].dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn check_alive(&mut self) -> Result<(), String> {
        for (i, s) in self.servers.iter_mut().enumerate() {
            if let Some(c) = s.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    s.child = None;
                    let log = std::fs::read_to_string(s.dir.join("server.log")).unwrap_or_default();
                    // The error, not the backtrace printed after it.
                    let log = ["Stack backtrace:", "stack backtrace:"]
                        .iter()
                        .filter_map(|b| log.find(b))
                        .min()
                        .map_or(log.as_str(), |at| &log[..at]);
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    return Err(format!(
                        "{} node {} exited ({status}):\n{}",
                        self.system.name(),
                        i + 1,
                        tail.join("\n")
                    ));
                }
            }
        }
        Ok(())
    }

    /// VmRSS of each server, KiB.
    /// CPU ticks used so far by every server together (`None` if one
    /// cannot be read).
    fn cpu_ticks(&self) -> Option<u64> {
        self.servers
            .iter()
            .map(|s| {
                let pid = s.child.as_ref()?.id();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                process_cpu_ticks(&stat)
            })
            .sum()
    }

    fn rss_kib(&self) -> Vec<Option<u64>> {
        self.servers
            .iter()
            .map(|s| s.child.as_ref().and_then(|c| rss_kib(c.id())))
            .collect()
    }

    fn stop(&mut self) {
        for s in &mut self.servers {
            if let Some(c) = s.child.as_ref() {
                // SIGTERM: both zab-server and the JVM shut down on it.
                // SAFETY: kill(2) on a pid we spawned and have not reaped.
                unsafe {
                    libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        for s in &mut self.servers {
            if let Some(mut c) = s.child.take() {
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_total_of_a_summary() {
        let json = r#"{
  "by_op": { "set": { "ops": 5, "ops_per_sec": 1.0, "p50_us": 9, "p99_us": 9, "p999_us": 9 } },
  "errors": {},
  "total": {
    "max_us": 18447,
    "ops": 88489,
    "ops_per_sec": 29496.3,
    "p50_us": 103,
    "p90_us": 813,
    "p999_us": 11103,
    "p99_us": 7907
  }
}"#;
        let f = figures_of(json).unwrap();
        assert_eq!(f.ops_per_sec, 29496.3);
        assert_eq!((f.p50_us, f.p99_us, f.p999_us), (103.0, 7907.0, 11103.0));
        assert!(!f.errors);
        let with_errors = json.replace("\"errors\": {}", "\"errors\": {\"closed\": 2}");
        assert!(figures_of(&with_errors).unwrap().errors);
    }

    #[test]
    fn extra_cfg_lines_go_to_their_own_system() {
        let args: Vec<String> = [
            "--zk-cfg",
            "flushDelay=1",
            "--zab-cfg",
            "flushDelay=0",
            "-d",
            "5",
        ]
        .map(String::from)
        .to_vec();
        let o = parse(&args).unwrap().unwrap();
        assert_eq!(o.zk_cfg, ["flushDelay=1"]);
        assert_eq!(o.zab_cfg, ["flushDelay=0"]);
        assert!(o.zk_jvm.is_empty());
        assert_eq!(o.load_args, ["-d", "5"]);
        let o = parse(&["--zk-jvm".into(), "a.b=/c".into()])
            .unwrap()
            .unwrap();
        assert_eq!(o.zk_jvm, ["a.b=/c"]);
        assert!(o.zk_cfg.is_empty());
        assert!(parse(&["--zk-cfg".into(), "flushDelay".into()]).is_err());
        assert!(parse(&["--zk-cfg".into(), "=1".into()]).is_err());
        assert!(parse(&["--zk-cfg".into()]).is_err());
    }

    #[test]
    fn zookeeper_gets_a_warm_up_round_unless_told_otherwise() {
        let args = |a: &[&str]| {
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            parse(&a).unwrap().unwrap()
        };
        let both = [System::Zab, System::ZooKeeper];
        let zabs = [System::Zab, System::Baseline];
        let o = args(&["--compare", "zookeeper"]);
        assert_eq!(warmup_rounds(&o, &both), 1);
        assert_eq!(warmup_rounds(&o, &[System::Zab]), 0);
        let o = args(&["--compare", "zab:/bin/zab-server"]);
        assert_eq!(warmup_rounds(&o, &zabs), 0);
        let o = args(&["--compare", "zookeeper", "--warmup-rounds", "0"]);
        assert_eq!(warmup_rounds(&o, &both), 0);
        let o = args(&["--compare", "zab:/bin/zab-server", "--warmup-rounds", "2"]);
        assert_eq!(warmup_rounds(&o, &zabs), 2);
        assert!(parse(&["--warmup-rounds".into(), "some".into()]).is_err());
    }

    #[test]
    fn side_by_side_shows_ratios_and_rss() {
        let o = parse(&["--compare".into(), "zookeeper".into()])
            .unwrap()
            .unwrap();
        let loads = vec![Load {
            name: "set 32x8".into(),
            args: vec![],
        }];
        let fig = |ops: f64, p50: f64, p99: f64| Figures {
            ops_per_sec: ops,
            p50_us: p50,
            p99_us: p99,
            p999_us: p99,
            errors: false,
            cpu_us_per_op: None,
            window_unix_ns: None,
        };
        let results = [
            Measured {
                system: System::Zab,
                loads: vec![Some(fig(40_000.0, 1_000.0, 5_000.0))],
                rounds: vec![],
                setup_s: vec![Some(1.0)],
                rss_start_kib: vec![Some(20 * 1024)],
                rss_end_kib: vec![Some(100 * 1024)],
                idle_cpus: None,
            },
            Measured {
                system: System::ZooKeeper,
                loads: vec![Some(fig(10_000.0, 4_000.0, 20_000.0))],
                rounds: vec![],
                setup_s: vec![Some(2.0)],
                rss_start_kib: vec![None],
                rss_end_kib: vec![Some(300 * 1024)],
                idle_cpus: Some(0.125),
            },
        ];
        let text = side_by_side(&o, &loads, &results);
        assert!(
            text.contains("CPUs the idle servers used while the other system ran: zookeeper 0.125"),
            "{text}"
        );
        let row = text.lines().find(|l| l.starts_with("set 32x8")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "set", "32x8", "40000", "10000", "4.00", "|", "1.00", "4.00", "0.25", "|", "5.00",
                "20.00", "0.25"
            ]
        );
        assert!(text.contains("zab        node1 20 -> 100"), "{text}");
        assert!(text.contains("zookeeper  node1 ? -> 300"), "{text}");
    }

    /// One system's results of one load over `rounds`.
    fn measured(system: System, rounds: Vec<Option<Figures>>) -> Measured {
        Measured {
            system,
            loads: vec![median_figures(&rounds)],
            rounds: vec![rounds],
            setup_s: vec![None],
            rss_start_kib: vec![],
            rss_end_kib: vec![],
            idle_cpus: None,
        }
    }

    fn figures(ops: f64, p50: f64, errors: bool) -> Figures {
        Figures {
            ops_per_sec: ops,
            p50_us: p50,
            p99_us: 10.0 * p50,
            p999_us: 20.0 * p50,
            errors,
            cpu_us_per_op: Some(ops / 10.0),
            window_unix_ns: None,
        }
    }

    #[test]
    fn compare_takes_zookeeper_or_a_zab_binary() {
        let args = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let o = parse(&args(&["--compare", "zab:/opt/old/zab-server"]))
            .unwrap()
            .unwrap();
        assert!(o.compare);
        assert_eq!(o.baseline, Some(PathBuf::from("/opt/old/zab-server")));
        let o = parse(&args(&["--compare", "zk"])).unwrap().unwrap();
        assert!(o.compare && o.baseline.is_none());
        assert!(parse(&args(&["--compare", "zab:"])).is_err());
        assert!(parse(&args(&["--compare", "etcd"])).is_err());
        // --only picks between zab and ZooKeeper; with a baseline it means nothing.
        assert!(parse(&args(&["--compare", "zab:/x", "--only", "zab"])).is_err());
    }

    #[test]
    fn a_baseline_is_shown_in_zookeepers_place() {
        let args: Vec<String> = ["--compare", "zab:/x", "--rounds", "2"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let o = parse(&args).unwrap().unwrap();
        let loads = vec![Load {
            name: "set 32x8".into(),
            args: vec![],
        }];
        let results = [
            measured(
                System::Zab,
                vec![
                    Some(figures(110.0, 900.0, false)),
                    Some(figures(90.0, 1_100.0, false)),
                ],
            ),
            measured(
                System::Baseline,
                vec![
                    Some(figures(100.0, 1_000.0, false)),
                    Some(figures(100.0, 1_000.0, false)),
                ],
            ),
        ];
        let text = side_by_side(&o, &loads, &results);
        assert!(text.contains("base op/s"), "{text}");
        assert!(!text.contains("zk "), "{text}");
        assert!(
            text.contains("x by round: 1.10 0.90 (median 1.00)"),
            "{text}"
        );
        assert!(text.contains("x = zab/base throughput"), "{text}");
        assert!(text.contains("baseline   \n"), "{text}");
        // Each side's CPU per op is its median over the rounds (11 and 9; 10 and 10).
        assert!(
            text.contains("servers' CPU per op: zab 10.0 us, base 10.0 us (ratio 1.00)"),
            "{text}"
        );
    }

    #[test]
    fn rounds_alternate_who_goes_first() {
        assert_eq!(turn_order(2, 0), [0, 1]);
        assert_eq!(turn_order(2, 1), [1, 0]);
        assert_eq!(turn_order(2, 2), [0, 1]);
        assert_eq!(turn_order(1, 1), [0]);
    }

    #[test]
    fn cpu_in_a_window_is_interpolated_between_samples() {
        let samples = [(0.0, 0), (1.0, 100), (2.0, 300), (3.0, 300)];
        assert_eq!(cpu_between(&samples, 0.0, 3.0), Some(300.0));
        assert_eq!(cpu_between(&samples, 0.5, 1.5), Some(150.0));
        assert_eq!(cpu_between(&samples, 2.0, 3.0), Some(0.0));
        // A window the samples do not cover has no figure.
        assert_eq!(cpu_between(&samples, 1.0, 3.5), None);
        assert_eq!(cpu_between(&samples[1..], 0.5, 2.0), None);
        assert_eq!(cpu_between(&[], 0.0, 1.0), None);
    }

    #[test]
    fn cpu_ticks_are_read_past_a_command_name_with_spaces() {
        let stat = "4242 (zab (x) server) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    250 75 0 0 20 0 3 0 100 1000 10 18446744073709551615";
        assert_eq!(process_cpu_ticks(stat), Some(325));
        assert_eq!(process_cpu_ticks("4242 (short) S 1"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(process_cpu_ticks(&own).is_some(), "{own}");
    }

    #[test]
    fn rounds_take_a_count_and_imply_compare_mode() {
        let o = parse(&["--rounds".into(), "3".into()]).unwrap().unwrap();
        assert_eq!(o.rounds, 3);
        assert!(o.compare);
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!(o.rounds, 1);
        assert!(!o.compare);
        assert!(parse(&["--rounds".into(), "0".into()]).is_err());
        assert!(parse(&["--rounds".into(), "x".into()]).is_err());
        let memory_twice = ["--memory", "1000", "--rounds", "2"].map(String::from);
        assert!(parse(&memory_twice).is_err());
    }

    #[test]
    fn a_stage_trace_runs_one_load_on_zab_alone() {
        let o = parse(&["--stage-trace".into()]).unwrap().unwrap();
        assert!(o.stage_trace && o.compare);
        assert_eq!(o.only, Some(System::Zab));
        for other in [
            &["--suite"][..],
            &["--memory", "10"],
            &["--rounds", "2"],
            &["--compare", "zab:/bin/true"],
            &["--only", "zookeeper"],
        ] {
            let args: Vec<String> = ["--stage-trace"]
                .iter()
                .chain(other)
                .map(|a| a.to_string())
                .collect();
            assert!(parse(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn two_systems_are_compared_over_three_interleaved_rounds_unless_told() {
        let opts = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            parse(&args).unwrap().unwrap()
        };
        let compare = opts(&["--compare", "zookeeper"]);
        assert_eq!(rounds_for(&compare, 2), DEFAULT_ROUNDS);
        // ZooKeeper not installed, or --only: one system, nothing to alternate.
        assert_eq!(rounds_for(&compare, 1), 1);
        assert_eq!(rounds_for(&opts(&["--only", "zab"]), 1), 1);
        let ab = opts(&["--compare", "zab:/x"]);
        assert_eq!(rounds_for(&ab, 2), DEFAULT_ROUNDS);
        // An explicit count wins, 1 included (one system after the other).
        let sequential = opts(&["--compare", "zookeeper", "--rounds", "1"]);
        assert_eq!(rounds_for(&sequential, 2), 1);
        let five = opts(&["--compare", "zookeeper", "--rounds", "5"]);
        assert_eq!(rounds_for(&five, 2), 5);
        // --memory measures one load.
        assert_eq!(rounds_for(&opts(&["--memory", "1000"]), 2), 1);
    }

    #[test]
    fn each_figure_is_its_own_median_over_the_rounds_that_ran() {
        let odd = [
            Some(figures(30.0, 9.0, false)),
            None,
            Some(figures(10.0, 1.0, false)),
            Some(figures(20.0, 5.0, true)),
        ];
        let m = median_figures(&odd).unwrap();
        assert_eq!((m.ops_per_sec, m.p50_us, m.p99_us), (20.0, 5.0, 50.0));
        assert!(m.errors, "a round with errors marks the median");
        let even = [
            Some(figures(10.0, 4.0, false)),
            Some(figures(40.0, 2.0, false)),
        ];
        let m = median_figures(&even).unwrap();
        assert_eq!((m.ops_per_sec, m.p50_us), (25.0, 3.0));
        assert!(!m.errors);
        assert_eq!(median_figures(&[None, None]), None);
    }

    #[test]
    fn interleaved_results_list_every_rounds_ratio() {
        let o = parse(&["--rounds".into(), "2".into()]).unwrap().unwrap();
        let loads = vec![Load {
            name: "set 32x8".into(),
            args: vec![],
        }];
        let results = [
            measured(
                System::Zab,
                vec![
                    Some(figures(40.0, 1.0, false)),
                    Some(figures(50.0, 1.0, false)),
                ],
            ),
            measured(
                System::ZooKeeper,
                vec![Some(figures(10.0, 4.0, false)), None],
            ),
        ];
        let text = side_by_side(&o, &loads, &results);
        let row = text.lines().find(|l| l.starts_with("set 32x8")).unwrap();
        assert!(row.contains(" 45 ") && row.contains(" 4.50 "), "{text}");
        assert!(
            text.contains("  x by round: 4.00 - (median 4.00)\n"),
            "{text}"
        );
        assert!(text.contains("median of 2 interleaved rounds"), "{text}");
    }

    #[test]
    fn options_split_between_xtask_and_the_generator() {
        let args: Vec<String> = ["--compare", "zookeeper", "--suite", "--duration", "10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&args).unwrap().unwrap();
        assert!(o.compare && o.suite);
        assert_eq!(o.load_args, ["--duration", "10"]);
        let l = loads(&o);
        assert_eq!(l.len(), 4);
        assert!(l[1].args.windows(2).any(|w| w == ["--clients", "1"]));
        assert_eq!(l[1].args.last().map(String::as_str), Some("10"));
    }
}
