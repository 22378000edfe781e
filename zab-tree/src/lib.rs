//! The replicated state machine: ZooKeeper's data tree.
//!
//! This crate owns the znodes (data, `Stat`, ACLs, ephemerals, sequential
//! counters, containers, TTL nodes), the replicated sessions table, the
//! per-server watch manager and session tracker, and turning requests into
//! txns (`prepare`) and txns into results and watch events (`apply`). Apply
//! is deterministic, so every server that applies the same txns in the same
//! order holds the same tree. It does no I/O and knows nothing of quorums.

pub mod session_tracker;
pub mod watch_event;
pub mod watch_manager;
pub use watch_event::WatchEvent;
