//! The replicated state machine: ZooKeeper's data tree.
//!
//! This crate owns the znodes (data, `Stat`, ACLs, ephemerals, sequential
//! counters, containers, TTL nodes), the replicated sessions table, the
//! per-server watch manager and session tracker, and turning requests into
//! txns (`prepare`) and txns into results and watch events (`apply`). Apply
//! is deterministic, so every server that applies the same txns in the same
//! order holds the same tree. It does no I/O and knows nothing of quorums.
//!
//! * [`tree`]: [`DataTree`] — znodes, `apply`, reads, reaper candidates;
//! * [`prepare`]: [`Preparer`] — ZooKeeper's `PrepRequestProcessor`;
//! * [`acl`]: identities, `auth`, permission checks, ACL fix-up;
//! * [`digest`]: the tree digest, computed as ZooKeeper computes it;
//! * [`path`]: path validation;
//! * [`quota`]: quota limits and the usage the tree keeps for them;
//! * [`snapshot`]: [`TreeSnapshot`] and [`DataTree::restore`].

pub mod acl;
pub mod digest;
mod java_hash_set;
pub mod node;
pub mod path;
pub mod prepare;
pub mod quota;
pub mod session_tracker;
pub mod snapshot;
pub mod tree;
pub mod watch_event;
pub mod watch_manager;
pub use watch_event::WatchEvent;

pub use acl::{authenticate, check_acl, who_am_i, AuthConfig, AuthInfo};
pub use prepare::{PrepareConfig, Preparer, RequestContext};
pub use snapshot::{SnapshotError, TreeSnapshot};
pub use tree::{Applied, DataTree, MultiReadStop, MULTI_READ_MAX_BYTES};

#[cfg(test)]
mod testkit;
