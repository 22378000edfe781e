//! The phases of a run: connect every session, create `/bench` and the keys,
//! then the timed load (warm-up, then measurement), then report and close.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use zab_wire::jute::{ErrorCode, Request};

use super::options::{OpKind, Options};
use super::pipeline::Completion;
use super::session::{Session, SessionError, Sink, Source};
use super::stats::{error_name, Stats, Summary};
use super::workload::{self, Mix, OpClass, Populate};

/// Why a run could not produce figures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("cannot create {path}: {err}")]
    Root { path: &'static str, err: String },
    #[error("every session failed")]
    AllSessionsLost,
    #[error("cannot write {path}: {err}")]
    Json { path: String, err: std::io::Error },
}

type Shared = Arc<Mutex<Stats>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Stats> {
    // A panicking session task cannot leave Stats half-updated in a way
    // that matters for counting; keep reporting.
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records completions that land inside the measurement window.
struct Recorder {
    stats: Shared,
    done: Arc<AtomicU64>,
    window: (Instant, Instant),
    /// Error codes that mean "already done" in this phase (NodeExists while
    /// creating the keys of an earlier run).
    benign: Option<i32>,
}

impl Sink for Recorder {
    fn complete(&mut self, c: Completion, now: Instant) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if now < self.window.0 || now > self.window.1 {
            return;
        }
        let mut s = lock(&self.stats);
        if c.err == 0 || Some(c.err) == self.benign {
            s.success(c.class, c.latency);
        } else {
            s.failure(error_name(c.err));
        }
    }
}

struct PopulateSource(Populate);

impl Source for PopulateSource {
    fn next(&mut self, _: Instant) -> Option<(OpClass, Request)> {
        self.0.next_request()
    }
}

struct TimedSource {
    mix: Mix,
    end: Instant,
}

impl Source for TimedSource {
    fn next(&mut self, now: Instant) -> Option<(OpClass, Request)> {
        (now < self.end).then(|| self.mix.next_request())
    }
}

/// Runs the whole load described by `opts` and reports it.
pub async fn run(opts: Options) -> Result<(), RunError> {
    opts.validate().map_err(RunError::Options)?;
    let value = Bytes::from(vec![b'x'; opts.value_size]);

    let mut sessions = connect_all(&opts).await?;
    say(
        &opts,
        &format!("{} sessions on {}", sessions.len(), opts.hosts.join(",")),
    );
    create_root(&mut sessions[0]).await?;

    let started = Instant::now();
    let (sessions, setup) = populate(&opts, sessions, &value).await?;
    let setup_time = started.elapsed();
    say(
        &opts,
        &format!(
            "set-up: {} of {} keys of {} B in {:.1} s ({} failed)",
            setup.successes(),
            opts.keys,
            opts.value_size,
            setup_time.as_secs_f64(),
            setup.failures()
        ),
    );

    let (sessions, summary) = if opts.duration > 0.0 {
        let (sessions, stats) = timed(&opts, sessions, &value).await?;
        let summary = stats.summary(Duration::from_secs_f64(opts.duration));
        (sessions, Some(summary))
    } else {
        (sessions, None)
    };

    let mut closing = JoinSet::new();
    for s in sessions {
        closing.spawn(s.close());
    }
    while closing.join_next().await.is_some() {}

    report(&opts, setup_time, &setup, summary.as_ref())
}

/// Connects every session, spread over the hosts round-robin.
async fn connect_all(opts: &Options) -> Result<Vec<Session>, RunError> {
    let mut connecting = JoinSet::new();
    for i in 0..opts.clients {
        let addr = opts.hosts[i % opts.hosts.len()].clone();
        let timeout = opts.session_timeout;
        connecting.spawn(async move { (i, Session::connect(&addr, timeout).await) });
    }
    let mut slots: Vec<Option<Session>> = (0..opts.clients).map(|_| None).collect();
    while let Some(joined) = connecting.join_next().await {
        if let Ok((i, s)) = joined {
            slots[i] = Some(s?);
        }
    }
    let sessions: Vec<Session> = slots.into_iter().flatten().collect();
    if sessions.len() != opts.clients {
        return Err(RunError::AllSessionsLost);
    }
    Ok(sessions)
}

/// Runs each session with its own source and sink (from `parts(index)`)
/// until all are done; sessions that fail are reported and dropped.
async fn phase<S, K>(
    sessions: Vec<Session>,
    inflight: usize,
    mut parts: impl FnMut(usize) -> (S, K),
) -> Result<Vec<Session>, RunError>
where
    S: Source + 'static,
    K: Sink + 'static,
{
    let mut tasks = JoinSet::new();
    for (i, mut s) in sessions.into_iter().enumerate() {
        let (mut source, mut sink) = parts(i);
        tasks.spawn(async move {
            let r = s.run(inflight, &mut source, &mut sink).await;
            (s, r)
        });
    }
    collect(&mut tasks).await
}

/// Creates the keys, partitioned over the sessions. NodeExists counts as
/// done, so a second run against the same ensemble reuses the keys.
async fn populate(
    opts: &Options,
    sessions: Vec<Session>,
    value: &Bytes,
) -> Result<(Vec<Session>, Stats), RunError> {
    let started = Instant::now();
    let forever = started + Duration::from_secs(365 * 24 * 3600);
    let done = Arc::new(AtomicU64::new(0));
    let stats: Vec<Shared> = sessions.iter().map(|_| Shared::default()).collect();
    let n = sessions.len();
    let progress = spawn_progress(opts, done.clone(), None, Some(opts.keys));
    let result = phase(sessions, opts.inflight, |i| {
        let source = PopulateSource(Populate::share(i, n, opts.keys, value.clone()));
        let sink = Recorder {
            stats: stats[i].clone(),
            done: done.clone(),
            window: (started, forever),
            benign: Some(ErrorCode::NodeExists.code()),
        };
        (source, sink)
    })
    .await;
    progress.abort();
    Ok((result?, merged(&stats)))
}

/// Warm-up, then the measured window; returns what the window recorded.
async fn timed(
    opts: &Options,
    sessions: Vec<Session>,
    value: &Bytes,
) -> Result<(Vec<Session>, Stats), RunError> {
    let measure_from = Instant::now() + Duration::from_secs_f64(opts.warmup);
    let end = measure_from + Duration::from_secs_f64(opts.duration);
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let stats: Vec<Shared> = sessions.iter().map(|_| Shared::default()).collect();
    let done = Arc::new(AtomicU64::new(0));
    let progress = spawn_progress(
        opts,
        done.clone(),
        Some((measure_from, stats.clone())),
        None,
    );
    let result = phase(sessions, opts.inflight, |i| {
        let mix = Mix::new(
            opts.op,
            opts.read_ratio,
            opts.keys,
            value.clone(),
            opts.seed,
            i,
            run_id,
        );
        let sink = Recorder {
            stats: stats[i].clone(),
            done: done.clone(),
            window: (measure_from, end),
            benign: None,
        };
        (TimedSource { mix, end }, sink)
    })
    .await;
    progress.abort();
    Ok((result?, merged(&stats)))
}

fn merged(stats: &[Shared]) -> Stats {
    let mut all = Stats::default();
    for s in stats {
        all.merge(&lock(s));
    }
    all
}

/// Prints the table and writes the JSON summary.
fn report(
    opts: &Options,
    setup_time: Duration,
    setup: &Stats,
    summary: Option<&Summary>,
) -> Result<(), RunError> {
    let run = json!({
        "label": opts.label,
        "hosts": opts.hosts,
        "clients": opts.clients,
        "inflight": opts.inflight,
        "op": opts.op.name(),
        "read_ratio": opts.read_ratio,
        "value_size": opts.value_size,
        "keys": opts.keys,
        "warmup_s": opts.warmup,
        "duration_s": opts.duration,
        "setup_s": setup_time.as_secs_f64(),
        "setup_failures": setup.failures(),
    });
    let doc = match summary {
        Some(sum) => {
            let label = if opts.label.is_empty() {
                "load"
            } else {
                &opts.label
            };
            let ratio = if opts.op == OpKind::Mixed {
                format!(" --read-ratio {}", opts.read_ratio)
            } else {
                String::new()
            };
            println!(
                "\n{label} --op {} --clients {} --inflight {} --value-size {}{ratio}",
                opts.op.name(),
                opts.clients,
                opts.inflight,
                opts.value_size,
            );
            print!("{}", sum.table());
            sum.json(run)
        }
        None => json!({ "run": run }),
    };
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|err| RunError::Json {
            path: path.display().to_string(),
            err,
        })?;
    }
    Ok(())
}

/// `create /bench` (NodeExists is fine: an earlier run made it).
async fn create_root(s: &mut Session) -> Result<(), RunError> {
    struct One(Option<Request>);
    impl Source for One {
        fn next(&mut self, _: Instant) -> Option<(OpClass, Request)> {
            self.0.take().map(|r| (OpClass::Create, r))
        }
    }
    struct Keep(Option<i32>);
    impl Sink for Keep {
        fn complete(&mut self, c: Completion, _: Instant) {
            self.0 = Some(c.err);
        }
    }
    let mut source = One(Some(workload::create(workload::ROOT.into(), Bytes::new())));
    let mut sink = Keep(None);
    s.run(1, &mut source, &mut sink).await?;
    match sink.0 {
        Some(0) => Ok(()),
        Some(e) if e == ErrorCode::NodeExists.code() => Ok(()),
        Some(e) => Err(RunError::Root {
            path: workload::ROOT,
            err: error_name(e),
        }),
        None => Err(RunError::Root {
            path: workload::ROOT,
            err: "no reply".into(),
        }),
    }
}

/// Waits for every session task; a lost session is reported and dropped,
/// losing all of them is an error.
async fn collect(
    tasks: &mut JoinSet<(Session, Result<(), SessionError>)>,
) -> Result<Vec<Session>, RunError> {
    let mut alive = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((s, Ok(()))) => alive.push(s),
            Ok((_, Err(e))) => eprintln!("zab-load: session lost: {e}"),
            Err(e) => eprintln!("zab-load: session task failed: {e}"),
        }
    }
    if alive.is_empty() {
        return Err(RunError::AllSessionsLost);
    }
    Ok(alive)
}

fn say(opts: &Options, line: &str) {
    if !opts.quiet {
        eprintln!("{line}");
    }
}

/// Prints a line a second: the completions of the last second and, while
/// measuring, the p99 so far.
fn spawn_progress(
    opts: &Options,
    done: Arc<AtomicU64>,
    measuring: Option<(Instant, Vec<Shared>)>,
    total: Option<u64>,
) -> tokio::task::JoinHandle<()> {
    let quiet = opts.quiet;
    tokio::spawn(async move {
        if quiet {
            return;
        }
        let start = Instant::now();
        let mut tick =
            tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        let mut last = 0;
        loop {
            let now = tick.tick().await;
            let count = done.load(Ordering::Relaxed);
            let rate = count - last;
            last = count;
            let t = (now - start).as_secs();
            let line = match (&measuring, total) {
                (Some((from, stats)), _) if now >= *from => {
                    let mut all = Stats::default();
                    for s in stats {
                        all.merge(&lock(s));
                    }
                    format!(
                        "[{t:>3}s] measuring  {rate:>8} ops/s  p99 {:.2} ms  errors {}",
                        all.p99_us() as f64 / 1000.0,
                        all.failures()
                    )
                }
                (Some(_), _) => format!("[{t:>3}s] warm-up    {rate:>8} ops/s"),
                (None, Some(total)) => {
                    format!("[{t:>3}s] set-up     {rate:>8} creates/s  {count}/{total}")
                }
                (None, None) => format!("[{t:>3}s] {rate:>8} ops/s"),
            };
            eprintln!("{line}");
        }
    })
}
