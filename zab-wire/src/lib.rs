//! Every byte on a zab wire.
//!
//! This crate owns the encodings and the vocabulary types that every other
//! zab crate speaks:
//!
//! * [`jute`]: Apache ZooKeeper's client protocol (the "jute" records, the
//!   length-prefixed framing, opcodes, error codes, watch events), byte for
//!   byte as ZooKeeper 3.8/3.9 speaks it, so unmodified ZooKeeper clients work;
//! * [`proto`]: zab's own server-to-server messages as protobuf (prost):
//!   `QuorumPacket`, `LearnerInfo`, `StateSummary`, election notifications and
//!   txn records, with the tonic service definitions for the peer links;
//! * [`types`]: `Zxid`, `Epoch`, `ServerId`, `SessionId` and the
//!   `QuorumVerifier`;
//! * [`digest_md5`] and [`quorum_auth`]: the SASL exchange clients and
//!   servers authenticate with, as plain steps of tokens.
//!
//! It does not open sockets, touch disk or spawn tasks: callers hand it bytes
//! and get typed values back (or a [`jute::DecodeError`], never a panic).

pub mod digest_md5;
pub mod jute;
pub mod proto;
pub mod quorum_auth;
pub mod types;

pub use types::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};
