//! `zab-load`: a load generator speaking ZooKeeper's client protocol to any
//! ZooKeeper-compatible ensemble (zab or ZooKeeper itself).
//!
//! * [`options`] owns the command line.
//! * [`workload`] decides, deterministically, which request comes next: the
//!   keys of the set-up phase, then creates, sets, gets or a read/write mix.
//! * [`pipeline`] is the pure per-connection core: xids, the window of
//!   outstanding requests, matching replies to requests, pings.
//! * [`session`] drives one pipeline over a tokio TCP connection.
//! * [`stats`] collects latencies (hdrhistogram, µs) and renders the
//!   progress line, the final table and the JSON summary.
//! * [`run`] strings the phases together.

pub mod options;
pub mod pipeline;
pub mod run;
pub mod session;
pub mod stats;
pub mod workload;
