//! The change notifications `apply` produces, before they are matched to
//! watching connections.

/// One ZooKeeper watch event (`WatcherEvent` without the state, which a
/// server always sends as SyncConnected). `event_type` is one of
/// `zab_wire::jute::event_type::*` (1 created, 2 deleted, 3 data changed,
/// 4 children changed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchEvent {
    pub event_type: i32,
    pub path: String,
}
