//! Memory budget: 1M znodes of 100 bytes must fit in 250 MiB of RSS per
//! server. Run with `cargo test --release -p zab-tree --test memory -- --ignored --nocapture`.
//!
//! A znode is one heap block (reference count, children pointer, ACL handle,
//! then header, name, meta and data: 144 B with glibc for these, whose meta
//! is 4 bytes as they were never written to and have time 0; 160 B with a
//! current ctime) plus 16 B in its parent's chunk of children and a 4-byte
//! search key beside it: ≈ 167 B/node, ≈ 159 MiB here.

use bytes::Bytes;
use zab_tree::DataTree;

#[path = "support/txns.rs"]
mod txns;
use txns::{create, txn};

/// Resident set size of this process, from `/proc/self/statm` (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
#[ignore = "allocates 1M znodes; run in release"]
fn million_znodes_of_100_bytes_fit_in_250_mib() {
    let before = rss_bytes().unwrap_or(0);
    let mut tree = DataTree::new();
    let data = Bytes::from(vec![b'x'; 100]);
    let mut zxid = 0;
    for p in 0..1000 {
        zxid += 1;
        tree.apply(&txn(zxid, create(format!("/n{p:04}"), data.clone())));
        for c in 0..999 {
            zxid += 1;
            let a = tree.apply(&txn(
                zxid,
                create(format!("/n{p:04}/c{c:04}"), data.clone()),
            ));
            assert!(a.result.is_ok());
        }
    }
    assert_eq!(tree.node_count(), 1_000_000 + 5);
    let after = rss_bytes().unwrap_or(0);
    let used = after.saturating_sub(before);
    eprintln!(
        "1M znodes: {} MiB RSS growth ({} bytes/node)",
        used >> 20,
        used / 1_000_000
    );
    assert!(used < 250 << 20, "{} MiB", used >> 20);
}
