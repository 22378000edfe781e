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
//!   txn records, and (feature `grpc`) the tonic services of the peer
//!   links;
//! * [`types`]: `Zxid`, `Epoch`, `ServerId`, `SessionId` and the
//!   `QuorumVerifier`;
//! * [`digest_md5`] and [`quorum_auth`]: the SASL exchange clients and
//!   servers authenticate with, as plain steps of tokens.
//!
//! It does not open sockets, touch disk or spawn tasks: callers hand it bytes
//! and get typed values back (or a [`jute::DecodeError`], never a panic).
//!
//! A server's side of a client connection: the first frame is a
//! `ConnectRequest`, every later one a `RequestHeader` and the body its op
//! names.
//!
//! ```
//! use bytes::BytesMut;
//! use zab_wire::jute::{
//!     encode_frame, ConnectRequest, ConnectResponse, FrameDecoder, Jute, PathWatchRequest,
//!     Reader, Request, RequestHeader,
//! };
//!
//! // What a client sends: its handshake, then a getData of /app.
//! let mut inbound = BytesMut::new();
//! let hello = ConnectRequest { time_out: 30_000, read_only: Some(false), ..Default::default() };
//! encode_frame(&hello.encode(), &mut inbound);
//! let get = Request::GetData(PathWatchRequest { path: "/app".into(), watch: false });
//! encode_frame(&get.encode_with_header(1), &mut inbound);
//!
//! // Frames up to jute.maxbuffer's default; `Ok(None)` until one is whole.
//! let frames = FrameDecoder::default();
//! let first = frames.decode(&mut inbound)?.expect("a whole frame");
//! let connect = ConnectRequest::decode(first)?;
//! let reply = ConnectResponse {
//!     protocol_version: 0,
//!     time_out: connect.time_out,
//!     session_id: 0x100,
//!     passwd: vec![0u8; 16].into(),
//!     read_only: connect.read_only.map(|_| false),
//! };
//! let mut outbound = BytesMut::new();
//! encode_frame(&reply.encode(), &mut outbound);
//!
//! let next = frames.decode(&mut inbound)?.expect("a whole frame");
//! let mut r = Reader::new(next);
//! let header = RequestHeader::read(&mut r)?;
//! assert_eq!(header.xid, 1);
//! assert_eq!(Request::decode(header.op, r.rest())?, get);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod digest_md5;
pub mod jute;
pub mod proto;
pub mod quorum_auth;
pub mod types;

/// The protobuf runtime of [`proto`]'s messages (`Message::encode_to_vec`,
/// `decode`), so a user needs no version of its own to match.
pub use prost;
pub use types::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};
