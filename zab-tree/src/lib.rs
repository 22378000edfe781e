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
//!
//! A write is prepared on the leader (checked against the tree and the
//! writes prepared before it, and turned into a txn, which may be an error
//! txn), then applied, in zxid order, by every server. Sessions are
//! replicated state: a write needs one. The caller gives out zxids and
//! tells the [`Preparer`] what was applied, so that it forgets the
//! pending changes it kept for it.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use zab_tree::{AuthInfo, DataTree, PrepareConfig, Preparer, RequestContext};
//! use zab_wire::jute::{op, Acl, CreateRequest, Request, Response};
//! use zab_wire::{SessionId, Zxid};
//!
//! let mut tree = DataTree::new();
//! let mut prep = Preparer::new(PrepareConfig::default());
//! let auth = AuthInfo::new(IpAddr::V4(Ipv4Addr::LOCALHOST));
//! let mut ctx = RequestContext {
//!     session_id: SessionId(0x100),
//!     cxid: 0,
//!     zxid: Zxid(1),
//!     time_ms: 1_700_000_000_000,
//!     auth: &auth,
//!     session_moved: false,
//!     session_local: false,
//! };
//! let txn = prep.prepare_create_session(&tree, &ctx, 30_000);
//! tree.apply(&txn);
//! prep.applied(ctx.zxid);
//!
//! ctx.cxid = 1;
//! ctx.zxid = Zxid(2);
//! let create = Request::Create {
//!     op: op::CREATE,
//!     req: CreateRequest {
//!         path: "/app".into(),
//!         data: Some("v1".into()),
//!         acl: Some(Acl::open_unsafe()),
//!         flags: 0,
//!     },
//! };
//! let txn = prep.prepare(&tree, &ctx, &create);
//! let applied = tree.apply(&txn);
//! prep.applied(ctx.zxid);
//! assert!(matches!(applied.result, Ok(Response::Create(ref c)) if c.path == "/app"));
//! assert_eq!(tree.data("/app").as_deref(), Some(&b"v1"[..]));
//! assert_eq!(tree.stat("/app").map(|s| s.czxid), Some(2));
//! ```

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
/// The vocabulary this crate's API speaks (`Zxid`, the jute records, the
/// quorum packets), so a user needs no version of its own to match.
pub use zab_wire;

pub use acl::{authenticate, check_acl, who_am_i, AuthConfig, AuthInfo};
pub use prepare::{PrepareConfig, Preparer, RequestContext};
pub use snapshot::{SnapshotError, TreeSnapshot};
pub use tree::{Applied, DataTree, MultiReadStop, MULTI_READ_MAX_BYTES};

#[cfg(test)]
mod testkit;
