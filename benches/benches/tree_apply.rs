//! The tree's share of a write (prepare + apply) and of a read.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::net::Ipv4Addr;
use zab_tree::acl::AuthInfo;
use zab_tree::{DataTree, PrepareConfig, Preparer, RequestContext};
use zab_wire::jute::{op, Acl, CreateRequest, PathWatchRequest, Request, SetDataRequest};
use zab_wire::{SessionId, Zxid};

const SESSION: SessionId = SessionId(0x0100_0000_0000_0001);

struct Fixture {
    tree: DataTree,
    prep: Preparer,
    auth: AuthInfo,
    zxid: Zxid,
}

impl Fixture {
    fn new() -> Fixture {
        let mut f = Fixture {
            tree: DataTree::new(),
            prep: Preparer::new(PrepareConfig::default()),
            auth: AuthInfo::new(Ipv4Addr::LOCALHOST.into()),
            zxid: Zxid::ZERO,
        };
        f.zxid = f.zxid.next();
        let ctx = RequestContext {
            session_id: SESSION,
            cxid: 0,
            zxid: f.zxid,
            time_ms: 1,
            auth: &f.auth,
            session_moved: false,
            session_local: false,
        };
        let txn = f.prep.prepare_create_session(&f.tree, &ctx, 30_000);
        f.tree.apply(&txn);
        f.prep.applied(f.zxid);
        f.write(&create("/bench"));
        f
    }

    fn write(&mut self, req: &Request) {
        self.zxid = self.zxid.next();
        let ctx = RequestContext {
            session_id: SESSION,
            cxid: 1,
            zxid: self.zxid,
            time_ms: 2,
            auth: &self.auth,
            session_moved: false,
            session_local: false,
        };
        let txn = self.prep.prepare(&self.tree, &ctx, req);
        let applied = self.tree.apply(&txn);
        self.prep.applied(self.zxid);
        black_box(applied);
    }
}

fn create(path: &str) -> Request {
    Request::Create {
        op: op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: Some(Bytes::from(vec![b'x'; 100])),
            acl: Some(Acl::open_unsafe()),
            flags: 0,
        },
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(1));

    let mut f = Fixture::new();
    let mut n = 0u64;
    g.bench_function("prepare+apply/create", |b| {
        b.iter(|| {
            n += 1;
            f.write(&create(&format!("/bench/n{n}")));
        })
    });

    let mut f = Fixture::new();
    f.write(&create("/bench/hot"));
    let set = Request::SetData(SetDataRequest {
        path: "/bench/hot".into(),
        data: Some(Bytes::from(vec![b'y'; 100])),
        version: -1,
    });
    g.bench_function("prepare+apply/setData", |b| b.iter(|| f.write(&set)));

    let get = Request::GetData(PathWatchRequest {
        path: "/bench/hot".into(),
        watch: false,
    });
    g.bench_function("read/getData", |b| {
        b.iter(|| black_box(f.tree.read(&get, SESSION, &f.auth).expect("read")))
    });

    // getChildren of a parent of 100 (a lock or election directory): the
    // list comes in ZooKeeper's hash-set order, computed per call.
    let mut f = Fixture::new();
    for i in 0..100 {
        f.write(&create(&format!("/bench/lock-{i:010}")));
    }
    let list = Request::GetChildren(PathWatchRequest {
        path: "/bench".into(),
        watch: false,
    });
    g.bench_function("read/getChildren-of-100", |b| {
        b.iter(|| black_box(f.tree.read(&list, SESSION, &f.auth).expect("read")))
    });

    // Children of a single parent (a flat namespace, as zab-load builds):
    // the lookup's binary search over the parent's children dominates.
    // "1-of" hits one child again and again (its search path stays in
    // cache); "any-of" goes round children in a scattered order, as a load
    // over all of them does.
    for (label, n) in [("10k", 10_000u32), ("1M", 1_000_000)] {
        let mut f = Fixture::new();
        for i in 0..n {
            f.write(&create(&format!("/bench/c{i:07}")));
        }
        let data = Bytes::from(vec![b'y'; 100]);
        let set = |path: String| {
            Request::SetData(SetDataRequest {
                path,
                data: Some(data.clone()),
                version: -1,
            })
        };
        let get = |path: String| Request::GetData(PathWatchRequest { path, watch: false });
        let one = format!("/bench/c{:07}", n / 3);
        let mut x = 1u64;
        let scattered: Vec<String> = (0..n.min(1 << 16))
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("/bench/c{:07}", (x >> 33) % u64::from(n))
            })
            .collect();
        let req = set(one.clone());
        g.bench_function(format!("prepare+apply/setData-1-of-{label}"), |b| {
            b.iter(|| f.write(&req))
        });
        // A write while a snapshot holds the tree copies the nodes on the
        // path, the parent's list of children included.
        g.bench_function(
            format!("prepare+apply/setData-1-of-{label}-snapshotted"),
            |b| {
                b.iter(|| {
                    let snapshot = f.tree.snapshot();
                    f.write(&req);
                    snapshot
                })
            },
        );
        let mut i = 0;
        g.bench_function(format!("prepare+apply/setData-any-of-{label}"), |b| {
            b.iter(|| {
                i = (i + 1) % scattered.len();
                f.write(&set(scattered[i].clone()))
            })
        });
        let req = get(one);
        g.bench_function(format!("read/getData-1-of-{label}"), |b| {
            b.iter(|| black_box(f.tree.read(&req, SESSION, &f.auth).expect("read")))
        });
        g.bench_function(format!("read/getData-any-of-{label}"), |b| {
            b.iter(|| {
                i = (i + 1) % scattered.len();
                let req = get(scattered[i].clone());
                black_box(f.tree.read(&req, SESSION, &f.auth).expect("read"))
            })
        });
        // The leader's container/TTL check, every containerCheckIntervalMs
        // on its pipeline: a tree of plain nodes holds no candidate.
        g.bench_function(format!("reaper/candidates-among-{label}"), |b| {
            b.iter(|| black_box(f.tree.reapable(i64::MAX, 0)))
        });
        if n <= 10_000 {
            g.bench_function(format!("read/getChildren-of-{label}"), |b| {
                b.iter(|| black_box(f.tree.read(&list, SESSION, &f.auth).expect("read")))
            });
        }
    }

    g.bench_function("snapshot/10k-nodes", |b| {
        b.iter_batched(
            || {
                let mut f = Fixture::new();
                for i in 0..10_000 {
                    f.write(&create(&format!("/bench/s{i}")));
                }
                f
            },
            |f| {
                let mut out = Vec::new();
                f.tree.snapshot().write_to(&mut out).expect("snapshot");
                black_box(out.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
