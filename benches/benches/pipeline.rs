//! The whole proposal pipeline in one process (issue 4): three zab servers
//! — a leader and two followers, each with its own RocksDB store (fsync
//! on) — over the real peer transport on 127.0.0.1, driven through the
//! client protocol by `zab-load`'s sessions. Each sample sends a fixed
//! number of `setData` requests (100 B) and waits for every reply, so the
//! time per element is the commit latency at window 1×1 and the inverse of
//! the committed txns/s at larger windows (sessions × requests in flight).
//! Sessions are spread over the three servers, so two thirds of the writes
//! are forwarded by a follower, as in a real ensemble.
//!
//! Batch size is the group commit's cap, `maxBatchSize` (txns per synced
//! group, the operator's knob; the peer links' batches are not a setting:
//! each carries what queued while the previous one was written): every
//! window runs with zab's default, ZooKeeper's 1000, and the windows
//! that can fill a group run again with smaller caps, each on a fresh
//! ensemble. Benchmark ids read `window/<sessions>x<in flight>/batch-<cap>`.

// Bench targets build with cfg(test): the modules' own tests compile in but
// never run here, hence the unused imports.
#[allow(dead_code, unused_imports)]
#[path = "../src/load/mod.rs"]
mod load;

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use load::pipeline::Completion;
use load::session::{Session, Sink, Source};
use load::workload::{create, OpClass};
use tokio::runtime::Runtime;
use zab_server::config::Config;
use zab_server::quorum::QuorumServer;
use zab_wire::jute::{Request, SetDataRequest};

/// Writes per session per sample.
const WRITES_PER_SESSION: u64 = 200;

struct Writes {
    left: u64,
    req: Request,
}

impl Source for Writes {
    fn next(&mut self, _now: tokio::time::Instant) -> Option<(OpClass, Request)> {
        self.left = self.left.checked_sub(1)?;
        Some((OpClass::Set, self.req.clone()))
    }
}

#[derive(Default)]
struct Count {
    failed: u64,
}

impl Sink for Count {
    fn complete(&mut self, c: Completion, _now: tokio::time::Instant) {
        if c.err != 0 {
            self.failed += 1;
        }
    }
}

/// Ports nobody listens on right now (bound, read, released).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

struct Ensemble {
    servers: Vec<QuorumServer>,
    clients: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Three servers with the group commit capped at `max_batch` txns.
async fn start_ensemble(max_batch: usize) -> Ensemble {
    let ports = free_ports(9);
    let lines: String = (0..3)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{}\n",
                i + 1,
                ports[3 + i],
                ports[6 + i]
            )
        })
        .collect();
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    let mut clients = Vec::new();
    for (i, client_port) in ports.iter().take(3).enumerate() {
        let dir = tempfile::tempdir().expect("data dir");
        let text = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxBatchSize={max_batch}\n{lines}",
            dir.path().display()
        );
        let id = (i + 1).to_string();
        let cfg = Config::parse(&text, Some(&id)).expect("zoo.cfg");
        servers.push(QuorumServer::start(cfg).await.expect("server starts"));
        clients.push(format!("127.0.0.1:{client_port}"));
        dirs.push(dir);
    }
    Ensemble {
        servers,
        clients,
        _dirs: dirs,
    }
}

/// A session on `addr`, retried until the ensemble serves (bounded).
async fn session(addr: &str) -> Session {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Session::connect(addr, 30_000).await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no session on {addr}: {e}"),
        }
    }
}

/// Group commit caps (`maxBatchSize`) and the windows (sessions × requests
/// in flight per session) each runs: one request at a time never makes a
/// group of more than one, so only the default runs it.
const RUNS: [(usize, &[(usize, usize)]); 3] = [
    (1000, &[(1, 1), (8, 8), (32, 8)]),
    (128, &[(8, 8), (32, 8)]),
    (16, &[(8, 8), (32, 8)]),
];

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let mut g = c.benchmark_group("pipeline_setData_3_servers");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (max_batch, windows) in RUNS {
        let ensemble = rt.block_on(start_ensemble(max_batch));
        let req = rt.block_on(set_up(&ensemble));
        for &(sessions, in_flight) in windows {
            let mut open: Vec<Option<Session>> = rt.block_on(async {
                let mut v = Vec::new();
                for i in 0..sessions {
                    v.push(Some(
                        session(&ensemble.clients[i % ensemble.clients.len()]).await,
                    ));
                }
                v
            });
            let per_sample = WRITES_PER_SESSION * sessions as u64;
            g.throughput(Throughput::Elements(per_sample));
            g.bench_function(
                BenchmarkId::new(
                    "window",
                    format!("{sessions}x{in_flight}/batch-{max_batch}"),
                ),
                |b| b.iter_custom(|iters| rt.block_on(writes(&mut open, &req, in_flight, iters))),
            );
            rt.block_on(async {
                for s in open.into_iter().flatten() {
                    s.close().await;
                }
            });
        }
        rt.block_on(async {
            for s in ensemble.servers {
                s.shutdown().await;
            }
        });
    }
    g.finish();
}

/// Creates the znode the writes set; returns the write.
async fn set_up(ensemble: &Ensemble) -> Request {
    let value = Bytes::from(vec![b'x'; 100]);
    let mut s = session(&ensemble.clients[0]).await;
    let mut setup = Count::default();
    for path in ["/bench", "/bench/k0"] {
        let mut one = Writes {
            left: 1,
            req: create(path.into(), value.clone()),
        };
        s.run(1, &mut one, &mut setup).await.expect("set-up");
    }
    s.close().await;
    Request::SetData(SetDataRequest {
        path: "/bench/k0".into(),
        data: Some(value),
        version: -1,
    })
}

/// `iters` samples, each `WRITES_PER_SESSION` writes on every open session
/// with `in_flight` outstanding per session; the time they took.
async fn writes(
    open: &mut [Option<Session>],
    req: &Request,
    in_flight: usize,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let tasks: Vec<_> = open
            .iter_mut()
            .map(|slot| {
                let mut s = slot.take().expect("session");
                let req = req.clone();
                tokio::spawn(async move {
                    let mut src = Writes {
                        left: WRITES_PER_SESSION,
                        req,
                    };
                    let mut sink = Count::default();
                    s.run(in_flight, &mut src, &mut sink)
                        .await
                        .expect("session keeps going");
                    assert_eq!(sink.failed, 0, "writes failed");
                    s
                })
            })
            .collect();
        for (slot, t) in open.iter_mut().zip(tasks) {
            *slot = Some(t.await.expect("session task"));
        }
    }
    start.elapsed()
}

criterion_group!(benches, bench);
criterion_main!(benches);
