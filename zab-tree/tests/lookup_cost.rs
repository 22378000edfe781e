//! Per-op cost of getData and setData (apply only) on children of one
//! parent of 10k and 1M, as the fastest of seven batches: a figure that
//! other processes on a shared machine can only make slower, so it compares
//! builds better than a mean does. Run with
//! `cargo test --release -p zab-tree --test lookup_cost -- --ignored --nocapture`.

use bytes::Bytes;
use std::time::Instant;
use zab_tree::acl::AuthInfo;
use zab_tree::DataTree;
use zab_wire::jute::{PathWatchRequest, Request};
use zab_wire::proto::{self, txn_body::Op as TxnOp, Txn};
use zab_wire::SessionId;

#[path = "support/txns.rs"]
mod txns;
use txns::{create, txn};

#[test]
#[ignore = "builds 1M znodes; run in release"]
fn lookup_cost() {
    let auth = AuthInfo::new(std::net::Ipv4Addr::LOCALHOST.into());
    for n in [10_000u64, 1_000_000] {
        let mut t = DataTree::new();
        let data = Bytes::from(vec![b'x'; 100]);
        let mut zxid = 1;
        t.apply(&txn(zxid, create("/bench".into(), data.clone())));
        for i in 0..n {
            zxid += 1;
            t.apply(&txn(zxid, create(format!("/bench/c{i:07}"), data.clone())));
        }
        let mut x = 1u64;
        let paths: Vec<String> = (0..(1 << 16))
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("/bench/c{:07}", (x >> 33) % n)
            })
            .collect();
        let reqs: Vec<Request> = paths
            .iter()
            .map(|p| {
                Request::GetData(PathWatchRequest {
                    path: p.clone(),
                    watch: false,
                })
            })
            .collect();
        let sets: Vec<Txn> = paths
            .iter()
            .map(|p| {
                txn(
                    0,
                    TxnOp::SetData(proto::SetDataTxn {
                        path: p.clone(),
                        data: Some(data.clone()),
                        version: 1,
                    }),
                )
            })
            .collect();
        let one = Request::GetData(PathWatchRequest {
            path: format!("/bench/c{:07}", n / 3),
            watch: false,
        });
        let (mut get_any, mut set_any, mut get_one, mut set_snap) =
            (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..7 {
            let s = Instant::now();
            for r in &reqs {
                std::hint::black_box(t.read(r, SessionId(1), &auth).ok());
            }
            get_any = get_any.min(s.elapsed().as_nanos() as f64 / reqs.len() as f64);
            let s = Instant::now();
            for _ in 0..reqs.len() {
                std::hint::black_box(t.read(&one, SessionId(1), &auth).ok());
            }
            get_one = get_one.min(s.elapsed().as_nanos() as f64 / reqs.len() as f64);
            let s = Instant::now();
            for st in &sets {
                zxid += 1;
                let mut st = st.clone();
                st.zxid = zxid;
                std::hint::black_box(t.apply(&st));
            }
            set_any = set_any.min(s.elapsed().as_nanos() as f64 / sets.len() as f64);
            let s = Instant::now();
            for st in sets.iter().take(200) {
                zxid += 1;
                let snap = t.snapshot();
                let mut st = st.clone();
                st.zxid = zxid;
                std::hint::black_box(t.apply(&st));
                drop(snap);
            }
            set_snap = set_snap.min(s.elapsed().as_nanos() as f64 / 200.0);
        }
        eprintln!("n={n}: getData-any {get_any:.0} ns, getData-1 {get_one:.0} ns, setData(apply)-any {set_any:.0} ns, setData-snapshotted {set_snap:.0} ns");
    }
}
