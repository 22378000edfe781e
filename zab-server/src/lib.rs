//! The zab server: the thin composition of the zab crates.
//!
//! It owns `zoo.cfg` and `myid` ([`config`]), the client listener and the
//! per-connection tasks ([`server`]) and their flow control
//! ([`client_flow`]), the standalone request pipeline
//! ([`pipeline`]) and the four-letter words ([`four_letter`], [`status`]).
//! Protocol logic lives in the crates below: the jute codec in `zab-wire`, the
//! tree in `zab-tree`, durability in `zab-store`.

pub mod admin;
pub mod admin_server;
pub mod client_flow;
pub mod config;
pub mod durable_mark;
pub mod exit_code;
pub mod four_letter;
pub mod held_clients;
pub mod kerberos_name;
pub mod latency_summary;
pub mod listen;
pub mod pipeline;
pub mod prometheus;
pub mod proposal_size;
pub mod quorum;
pub mod quorum_transport;
pub mod sasl;
pub mod sasl_gssapi;
pub mod server;
pub mod snap_link;
pub mod stage_trace;
pub mod status;
pub mod store_txn_log;
pub mod tls;
pub mod zookeeper_import;
