//! Watches per connection: which connection watches which path, in which
//! modes, and who is notified when a txn changes the tree.
//!
//! This module owns the server-local watch registry (ZooKeeper's two
//! `WatchManager`s held by `DataTree`, reference D.5). Watches are not
//! replicated: each server keeps the watches of the connections it holds, and
//! every server turns the [`WatchEvent`]s that `apply` produces into the list
//! of its own connections to notify.
//!
//! Like ZooKeeper, the registry keeps two tables:
//!
//! - the **data table**: getData / exists watches (one-shot, "standard"),
//!   the data half of a persistent watch, and persistent-recursive watches;
//! - the **child table**: getChildren watches (one-shot) and the child half of
//!   a persistent watch. Recursive watches are never put here, which is why
//!   they never see NodeChildrenChanged (behaviour 30).
//!
//! Each (connection, path) in a table holds a *set* of modes — standard,
//! persistent, persistent-recursive — that coexist (ZooKeeper ≥ 3.9's
//! `WatchStats`, reference §0; 3.8 let the last mode win). A standard mode is
//! removed when it fires; the persistent ones stay, even after the node is
//! deleted, until removeWatches or the connection goes away.
//!
//! What this module does not do: decide whether a read registers a watch
//! (a failed getData leaves none, behaviour 27 — the caller only calls
//! [`WatchManager::add`] on success), filter deliveries by READ ACL (the
//! server does that after [`WatchManager::trigger`]; the one-shot watch is
//! consumed either way, as in ZooKeeper), or order events before replies
//! (behaviour 23, the server's send queue).

use std::collections::BTreeMap;
use std::sync::Arc;

use foldhash::{HashMap, HashSet};
use zab_wire::jute::{event_type, watcher_type};

use crate::WatchEvent;

/// A client connection on this server. Watches belong to the connection
/// that registered them (reference D.5); the server maps it to its session
/// for the `wchc` / `wchp` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// How a watch was registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// getData(watch): one-shot, data table.
    Data,
    /// exists(watch), on an existing or a missing node: one-shot, data table
    /// (ZooKeeper does not tell it apart from [`WatchKind::Data`]).
    Exist,
    /// getChildren / getChildren2(watch): one-shot, child table.
    Child,
    /// addWatch mode 0: persistent, in both the data and the child table.
    Persistent,
    /// addWatch mode 1: persistent on the path and every descendant, data
    /// table only.
    PersistentRecursive,
}

/// The modes one connection holds on one path of one table (ZooKeeper's
/// `WatchStats` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Modes(u8);

impl Modes {
    const NONE: Modes = Modes(0);
    const STANDARD: Modes = Modes(1);
    const PERSISTENT: Modes = Modes(2);
    const RECURSIVE: Modes = Modes(4);

    fn has(self, mode: Modes) -> bool {
        self.0 & mode.0 != 0
    }
    fn with(self, mode: Modes) -> Modes {
        Modes(self.0 | mode.0)
    }
    fn without(self, mode: Modes) -> Modes {
        Modes(self.0 & !mode.0)
    }
    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One of the two tables. Paths are interned once (`Arc<str>`) and shared by
/// both indexes.
#[derive(Clone, Debug, Default)]
struct WatchTable {
    /// path → the connections watching it, with their modes. A `BTreeMap`
    /// keeps iteration (and so trigger output) deterministic.
    by_path: HashMap<Arc<str>, BTreeMap<ConnectionId, Modes>>,
    /// connection → the paths it watches (for removal on disconnect).
    by_conn: HashMap<ConnectionId, HashSet<Arc<str>>>,
    /// Number of (connection, path) entries in the table.
    pairs: usize,
    /// Number of (connection, path) entries holding the recursive mode. While
    /// it is 0 a trigger does not walk the path's ancestors (as ZooKeeper's
    /// `recursiveWatchQty`).
    recursive: usize,
}

impl WatchTable {
    /// Adds `mode`; true if the entry changed.
    fn add(&mut self, conn: ConnectionId, path: &str, mode: Modes) -> bool {
        // Reuse the interned key when the path is already watched.
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(path),
        };
        let watchers = self.by_path.entry(Arc::clone(&key)).or_default();
        let old = watchers.get(&conn).copied().unwrap_or(Modes::NONE);
        let new = old.with(mode);
        if new == old {
            return false;
        }
        watchers.insert(conn, new);
        if old.is_empty() {
            self.pairs += 1;
            self.by_conn.entry(conn).or_default().insert(key);
        }
        if new.has(Modes::RECURSIVE) && !old.has(Modes::RECURSIVE) {
            self.recursive += 1;
        }
        true
    }

    /// Removes `mode` (all modes if `None`); true if the entry changed.
    fn remove(&mut self, conn: ConnectionId, path: &str, mode: Option<Modes>) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(&old) = watchers.get(&conn) else {
            return false;
        };
        let new = match mode {
            Some(m) => old.without(m),
            None => Modes::NONE,
        };
        if new == old {
            return false;
        }
        if new.is_empty() {
            watchers.remove(&conn);
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            Self::unindex(&mut self.by_conn, conn, path);
            self.pairs -= 1;
        } else {
            watchers.insert(conn, new);
        }
        if old.has(Modes::RECURSIVE) && !new.has(Modes::RECURSIVE) {
            self.recursive -= 1;
        }
        true
    }

    /// True if `conn` holds `mode` on `path` (any mode if `None`).
    fn contains(&self, conn: ConnectionId, path: &str, mode: Option<Modes>) -> bool {
        match self.by_path.get(path).and_then(|w| w.get(&conn)) {
            Some(&modes) => mode.is_none_or(|m| modes.has(m)),
            None => false,
        }
    }

    fn remove_connection(&mut self, conn: ConnectionId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for path in paths {
            let Some(watchers) = self.by_path.get_mut(&path) else {
                continue;
            };
            if let Some(modes) = watchers.remove(&conn) {
                self.pairs -= 1;
                if modes.has(Modes::RECURSIVE) {
                    self.recursive -= 1;
                }
            }
            if watchers.is_empty() {
                self.by_path.remove(&path);
            }
        }
    }

    fn unindex(
        by_conn: &mut HashMap<ConnectionId, HashSet<Arc<str>>>,
        conn: ConnectionId,
        path: &str,
    ) {
        if let Some(paths) = by_conn.get_mut(&conn) {
            paths.remove(path);
            if paths.is_empty() {
                by_conn.remove(&conn);
            }
        }
    }

    /// Appends to `out` every connection this table notifies for an event on
    /// `path` (ZooKeeper's `WatchManager.triggerWatch`): every watch on the
    /// path itself, whatever its modes, consuming the standard (one-shot)
    /// mode; and recursive watches on each ancestor. `out` may receive
    /// duplicates; the caller deduplicates.
    fn trigger(&mut self, path: &str, out: &mut Vec<ConnectionId>) {
        if let Some(watchers) = self.by_path.get_mut(path) {
            let by_conn = &mut self.by_conn;
            let pairs = &mut self.pairs;
            watchers.retain(|&conn, modes| {
                out.push(conn);
                *modes = modes.without(Modes::STANDARD);
                if modes.is_empty() {
                    // The connection keeps its (maybe now empty) entry:
                    // ZooKeeper's `triggerWatch` takes the path out of the
                    // watcher's set and leaves the set, so `wchs` still
                    // counts the connection and `wchc` lists it until it
                    // closes (3.8 and 3.9; checked on 3.8.0).
                    if let Some(paths) = by_conn.get_mut(&conn) {
                        paths.remove(path);
                    }
                    *pairs -= 1;
                    false
                } else {
                    true
                }
            });
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
        }
        // Walk up the path's ancestors (never the whole table): only the
        // recursive mode fires from an ancestor (behaviour 30).
        if self.recursive == 0 {
            return;
        }
        for ancestor in ancestors(path) {
            if let Some(watchers) = self.by_path.get(ancestor) {
                out.extend(
                    watchers
                        .iter()
                        .filter(|(_, m)| m.has(Modes::RECURSIVE))
                        .map(|(&c, _)| c),
                );
            }
        }
    }

    fn paths_of(&self, conn: ConnectionId) -> Vec<String> {
        let mut paths: Vec<String> = self
            .by_conn
            .get(&conn)
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        paths.sort_unstable();
        paths
    }
}

/// The proper ancestors of a validated absolute path, nearest first:
/// `/a/b/c` → `/a/b`, `/a`, `/`. Borrowed slices, no allocation.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        if rest.len() <= 1 {
            return None;
        }
        let idx = rest.rfind('/')?;
        rest = if idx == 0 { "/" } else { &rest[..idx] };
        Some(rest)
    })
}

/// The watch registry of one server (reference D.5).
#[derive(Clone, Debug, Default)]
pub struct WatchManager {
    data: WatchTable,
    child: WatchTable,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a watch. Adding a mode the connection already holds on the
    /// path changes nothing; different modes coexist (reference §0, ≥ 3.9).
    pub fn add(&mut self, conn: ConnectionId, path: &str, kind: WatchKind) {
        match kind {
            WatchKind::Data | WatchKind::Exist => {
                self.data.add(conn, path, Modes::STANDARD);
            }
            WatchKind::Child => {
                self.child.add(conn, path, Modes::STANDARD);
            }
            // A persistent watch sees its node's own events through the data
            // table and its children's creation/deletion through the child
            // table (behaviour 29).
            WatchKind::Persistent => {
                self.data.add(conn, path, Modes::PERSISTENT);
                self.child.add(conn, path, Modes::PERSISTENT);
            }
            WatchKind::PersistentRecursive => {
                self.data.add(conn, path, Modes::RECURSIVE);
            }
        }
    }

    /// The connections to notify of `event`, sorted, each once even if
    /// several of its watches match (behaviours 24, 25). Fired one-shot
    /// watches are removed; persistent ones stay.
    ///
    /// Per event type (reference D.5 trigger table):
    /// - NodeCreated, NodeDataChanged: data table on the path, recursive
    ///   watches on the path or any ancestor;
    /// - NodeDeleted: the same, plus the child table on the path (a
    ///   getChildren watch on a deleted node fires NodeDeleted);
    /// - NodeChildrenChanged: child table on the path only — recursive
    ///   watches never see it.
    ///
    /// Other event types notify nobody.
    pub fn trigger(&mut self, event: &WatchEvent) -> Vec<ConnectionId> {
        let mut out = Vec::new();
        let path = event.path.as_str();
        match event.event_type {
            event_type::NODE_CREATED | event_type::NODE_DATA_CHANGED => {
                self.data.trigger(path, &mut out);
            }
            event_type::NODE_DELETED => {
                // ZooKeeper triggers both tables and suppresses the second
                // delivery to a connection already notified (behaviour 25);
                // the child table's one-shot watches are consumed either way.
                self.data.trigger(path, &mut out);
                self.child.trigger(path, &mut out);
            }
            event_type::NODE_CHILDREN_CHANGED => {
                self.child.trigger(path, &mut out);
            }
            _ => {}
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// SetWatches (-8) / SetWatches2 after a reconnect (reference D.5,
    /// behaviour 28), evaluated against the current tree. Returns the events
    /// to send now, before the reply, in ZooKeeper's order (data list, exist
    /// list, child list; no deduplication across lists); registers the
    /// watches that did not fire. `lookup(path)` gives `Some((mzxid, pzxid))`
    /// for an existing node and `None` for a missing one.
    ///
    /// ZooKeeper ≥ 3.9 sends these events with reply zxid -1 (reference §0);
    /// that is the caller's framing.
    #[allow(clippy::too_many_arguments)]
    pub fn set_watches(
        &mut self,
        conn: ConnectionId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        persistent_recursive: &[String],
        lookup: impl Fn(&str) -> Option<(i64, i64)>,
    ) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        let mut fire = |event_type: i32, path: &str| {
            events.push(WatchEvent {
                event_type,
                path: path.to_string(),
            })
        };
        for path in data {
            match lookup(path) {
                None => fire(event_type::NODE_DELETED, path),
                Some((mzxid, _)) if mzxid > relative_zxid => {
                    fire(event_type::NODE_DATA_CHANGED, path)
                }
                Some(_) => self.add(conn, path, WatchKind::Data),
            }
        }
        for path in exist {
            match lookup(path) {
                Some(_) => fire(event_type::NODE_CREATED, path),
                None => self.add(conn, path, WatchKind::Exist),
            }
        }
        for path in child {
            match lookup(path) {
                None => fire(event_type::NODE_DELETED, path),
                Some((_, pzxid)) if pzxid > relative_zxid => {
                    fire(event_type::NODE_CHILDREN_CHANGED, path)
                }
                Some(_) => self.add(conn, path, WatchKind::Child),
            }
        }
        // Persistent watches are re-armed with no immediate event.
        for path in persistent {
            self.add(conn, path, WatchKind::Persistent);
        }
        for path in persistent_recursive {
            self.add(conn, path, WatchKind::PersistentRecursive);
        }
        events
    }

    /// checkWatches (17): does `conn` hold a watch of `watcher_type`
    /// (`zab_wire::jute::watcher_type`) on `path`? As `DataTree.containsWatcher`:
    /// Children and Data look for one-shot watches only, Persistent and
    /// PersistentRecursive for that mode in the data table, Any for anything.
    /// An unknown type matches nothing.
    pub fn contains(&self, conn: ConnectionId, path: &str, watcher_type: i32) -> bool {
        match watcher_type {
            watcher_type::CHILDREN => self.child.contains(conn, path, Some(Modes::STANDARD)),
            watcher_type::DATA => self.data.contains(conn, path, Some(Modes::STANDARD)),
            watcher_type::PERSISTENT => self.data.contains(conn, path, Some(Modes::PERSISTENT)),
            watcher_type::PERSISTENT_RECURSIVE => {
                self.data.contains(conn, path, Some(Modes::RECURSIVE))
            }
            watcher_type::ANY => {
                self.child.contains(conn, path, None) || self.data.contains(conn, path, None)
            }
            _ => false,
        }
    }

    /// removeWatches (18) / the removal half of checkWatches: removes
    /// `conn`'s watches of `watcher_type` on `path` and returns true if any
    /// was removed. As `DataTree.removeWatch`: Data removes the one-shot data
    /// table watch (getData and exists alike), Children the one-shot child
    /// watch, Persistent both halves of a persistent watch,
    /// PersistentRecursive the recursive one, Any everything. Sends nothing
    /// (behaviour 31).
    pub fn remove(&mut self, conn: ConnectionId, path: &str, watcher_type: i32) -> bool {
        match watcher_type {
            watcher_type::CHILDREN => self.child.remove(conn, path, Some(Modes::STANDARD)),
            watcher_type::DATA => self.data.remove(conn, path, Some(Modes::STANDARD)),
            watcher_type::PERSISTENT => {
                let child = self.child.remove(conn, path, Some(Modes::PERSISTENT));
                let data = self.data.remove(conn, path, Some(Modes::PERSISTENT));
                child || data
            }
            watcher_type::PERSISTENT_RECURSIVE => {
                self.data.remove(conn, path, Some(Modes::RECURSIVE))
            }
            watcher_type::ANY => {
                let child = self.child.remove(conn, path, None);
                let data = self.data.remove(conn, path, None);
                child || data
            }
            _ => false,
        }
    }

    /// Drops every watch of a closed connection.
    pub fn remove_connection(&mut self, conn: ConnectionId) {
        self.data.remove_connection(conn);
        self.child.remove_connection(conn);
    }

    /// `wchs` "Total watches": (connection, path) entries of the data table
    /// (behaviour 32: child watches are not counted).
    pub fn data_watch_count(&self) -> usize {
        self.data.pairs
    }

    /// `wchs` "watching N paths": paths in the data table.
    pub fn data_watch_paths(&self) -> usize {
        self.data.by_path.len()
    }

    /// `wchs` "N connections": connections with a data-table watch, or
    /// whose data-table watches have all fired (see `WatchTable::trigger`).
    pub fn data_watch_connections(&self) -> usize {
        self.data.by_conn.len()
    }

    /// `wchc`: data-table paths per connection, both sorted.
    pub fn data_watches_by_connection(&self) -> BTreeMap<ConnectionId, Vec<String>> {
        self.data
            .by_conn
            .keys()
            .map(|&conn| (conn, self.data.paths_of(conn)))
            .collect()
    }

    /// `wchp`: connections per data-table path, both sorted.
    pub fn data_watches_by_path(&self) -> BTreeMap<String, Vec<ConnectionId>> {
        self.data
            .by_path
            .iter()
            .map(|(path, watchers)| (path.to_string(), watchers.keys().copied().collect()))
            .collect()
    }

    /// mntr `zk_watch_count`: (connection, path) entries of both tables, as
    /// `DataTree.getWatchCount` (a persistent watch counts twice).
    pub fn total_watch_count(&self) -> usize {
        self.data.pairs + self.child.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const C1: ConnectionId = ConnectionId(1);
    const C2: ConnectionId = ConnectionId(2);
    const C3: ConnectionId = ConnectionId(3);

    fn ev(event_type: i32, path: &str) -> WatchEvent {
        WatchEvent {
            event_type,
            path: path.to_string(),
        }
    }
    fn created(path: &str) -> WatchEvent {
        ev(event_type::NODE_CREATED, path)
    }
    fn deleted(path: &str) -> WatchEvent {
        ev(event_type::NODE_DELETED, path)
    }
    fn changed(path: &str) -> WatchEvent {
        ev(event_type::NODE_DATA_CHANGED, path)
    }
    fn children(path: &str) -> WatchEvent {
        ev(event_type::NODE_CHILDREN_CHANGED, path)
    }
    fn strings(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn ancestors_walks_up_to_root() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), ["/"]);
        assert_eq!(ancestors("/").count(), 0);
        assert_eq!(ancestors("").count(), 0);
    }

    #[test]
    fn one_shot_data_watch_fires_once() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/a", WatchKind::Data);
        assert_eq!(wm.trigger(&changed("/a")), vec![C1]);
        assert!(wm.trigger(&changed("/a")).is_empty());
        assert_eq!(wm.total_watch_count(), 0);
    }

    #[test]
    fn exist_watch_fires_on_create_and_shares_data_table() {
        // Behaviour 27: exists on a missing node leaves a watch that fires
        // NodeCreated.
        let mut wm = WatchManager::new();
        wm.add(C1, "/new", WatchKind::Exist);
        assert!(wm.contains(C1, "/new", watcher_type::DATA));
        assert_eq!(wm.trigger(&created("/new")), vec![C1]);
        assert!(!wm.contains(C1, "/new", watcher_type::DATA));
    }

    #[test]
    fn child_watch_only_sees_children_changed_and_deleted() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Child);
        assert!(wm.trigger(&changed("/p")).is_empty());
        assert!(wm.trigger(&created("/p")).is_empty());
        assert_eq!(wm.trigger(&children("/p")), vec![C1]);
        assert!(wm.trigger(&children("/p")).is_empty());
        wm.add(C1, "/p", WatchKind::Child);
        assert_eq!(wm.trigger(&deleted("/p")), vec![C1]);
        assert_eq!(wm.total_watch_count(), 0);
    }

    #[test]
    fn data_watch_does_not_see_children_changed() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Data);
        assert!(wm.trigger(&children("/p")).is_empty());
        assert!(wm.contains(C1, "/p", watcher_type::DATA));
    }

    #[test]
    fn behaviour_24_one_event_per_connection() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/a/b", WatchKind::Data);
        wm.add(C1, "/a/b", WatchKind::Persistent);
        wm.add(C1, "/a", WatchKind::PersistentRecursive);
        wm.add(C1, "/", WatchKind::PersistentRecursive);
        wm.add(C2, "/a/b", WatchKind::Exist);
        assert_eq!(wm.trigger(&changed("/a/b")), vec![C1, C2]);
    }

    #[test]
    fn behaviour_25_delete_with_data_and_child_watch_notifies_once() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Data);
        wm.add(C1, "/p", WatchKind::Child);
        assert_eq!(wm.trigger(&deleted("/p")), vec![C1]);
        // Both one-shot watches were consumed.
        assert!(!wm.contains(C1, "/p", watcher_type::ANY));
        assert_eq!(wm.total_watch_count(), 0);
    }

    #[test]
    fn behaviour_26_delete_child_then_parent() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p/c", WatchKind::Data);
        wm.add(C1, "/p", WatchKind::Child);
        wm.add(C1, "/p", WatchKind::Data);
        // delete /p/c: NodeDeleted(/p/c), NodeChildrenChanged(/p)
        assert_eq!(wm.trigger(&deleted("/p/c")), vec![C1]);
        assert_eq!(wm.trigger(&children("/p")), vec![C1]);
        // delete /p: NodeDeleted(/p) from the remaining data watch
        assert_eq!(wm.trigger(&deleted("/p/c")), vec![]);
        assert_eq!(wm.trigger(&children("/")), vec![]);
        assert_eq!(wm.trigger(&deleted("/p")), vec![C1]);
    }

    #[test]
    fn behaviour_28_set_watches_fires_or_rearms() {
        let mut wm = WatchManager::new();
        // Node /old: mzxid 5, pzxid 5; /new: mzxid 20, pzxid 30; /gone missing.
        let lookup = |p: &str| match p {
            "/old" => Some((5, 5)),
            "/new" => Some((20, 30)),
            _ => None,
        };
        let events = wm.set_watches(
            C1,
            10,
            &strings(&["/old", "/new", "/gone"]),
            &strings(&["/new", "/absent"]),
            &strings(&["/old", "/new", "/gone"]),
            &[],
            &[],
            lookup,
        );
        assert_eq!(
            events,
            vec![
                changed("/new"),
                deleted("/gone"),
                created("/new"),
                children("/new"),
                deleted("/gone"),
            ]
        );
        // Silently re-armed: data /old, exist /absent, child /old.
        assert!(wm.contains(C1, "/old", watcher_type::DATA));
        assert!(wm.contains(C1, "/absent", watcher_type::DATA));
        assert!(wm.contains(C1, "/old", watcher_type::CHILDREN));
        assert!(!wm.contains(C1, "/new", watcher_type::ANY));
        assert!(!wm.contains(C1, "/gone", watcher_type::ANY));
        assert_eq!(wm.total_watch_count(), 3);
    }

    #[test]
    fn behaviour_28_equal_zxid_is_not_newer() {
        let mut wm = WatchManager::new();
        let events = wm.set_watches(
            C1,
            7,
            &strings(&["/n"]),
            &[],
            &strings(&["/n"]),
            &[],
            &[],
            |_| Some((7, 7)),
        );
        assert!(events.is_empty());
        assert_eq!(wm.trigger(&changed("/n")), vec![C1]);
        assert_eq!(wm.trigger(&children("/n")), vec![C1]);
    }

    #[test]
    fn set_watches_rearms_persistent_without_events() {
        let mut wm = WatchManager::new();
        let events = wm.set_watches(
            C1,
            0,
            &[],
            &[],
            &[],
            &strings(&["/p"]),
            &strings(&["/r"]),
            |_| None,
        );
        assert!(events.is_empty());
        assert!(wm.contains(C1, "/p", watcher_type::PERSISTENT));
        assert!(wm.contains(C1, "/r", watcher_type::PERSISTENT_RECURSIVE));
        assert_eq!(wm.trigger(&created("/r/x/y")), vec![C1]);
        assert_eq!(wm.trigger(&children("/p")), vec![C1]);
    }

    #[test]
    fn behaviour_29_persistent_watch() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Persistent);
        assert_eq!(wm.trigger(&created("/p")), vec![C1]);
        assert_eq!(wm.trigger(&changed("/p")), vec![C1]);
        assert_eq!(wm.trigger(&children("/p")), vec![C1]);
        assert_eq!(wm.trigger(&deleted("/p")), vec![C1]);
        // Survives the deletion and fires again.
        assert_eq!(wm.trigger(&created("/p")), vec![C1]);
        // Not recursive: nothing for a child's own events.
        assert!(wm.trigger(&changed("/p/c")).is_empty());
        assert!(wm.trigger(&created("/p/c")).is_empty());
        assert!(wm.contains(C1, "/p", watcher_type::PERSISTENT));
    }

    #[test]
    fn behaviour_30_recursive_watch() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/r", WatchKind::PersistentRecursive);
        for event in [
            created("/r"),
            changed("/r"),
            created("/r/a"),
            created("/r/a/b"),
            changed("/r/a/b"),
            deleted("/r/a/b"),
            deleted("/r"),
            created("/r"),
        ] {
            assert_eq!(wm.trigger(&event), vec![C1], "{event:?}");
        }
        // Never ChildrenChanged, neither on the path nor below.
        assert!(wm.trigger(&children("/r")).is_empty());
        assert!(wm.trigger(&children("/r/a")).is_empty());
        // Siblings and prefixes that are not ancestors do not match.
        assert!(wm.trigger(&created("/rr")).is_empty());
        assert!(wm.trigger(&created("/")).is_empty());
        assert!(wm.contains(C1, "/r", watcher_type::PERSISTENT_RECURSIVE));
    }

    #[test]
    fn recursive_watch_on_root_sees_everything() {
        let mut wm = WatchManager::new();
        wm.add(C2, "/", WatchKind::PersistentRecursive);
        assert_eq!(wm.trigger(&created("/x/y/z")), vec![C2]);
        assert_eq!(wm.trigger(&changed("/")), vec![C2]);
    }

    #[test]
    fn modes_coexist_on_one_path() {
        // ≥ 3.9 (reference §0): adding a recursive watch keeps the existing
        // one-shot child watch.
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Child);
        wm.add(C1, "/p", WatchKind::PersistentRecursive);
        assert_eq!(wm.trigger(&children("/p")), vec![C1]);
        assert!(wm.trigger(&children("/p")).is_empty());
        // A one-shot data watch fires and goes; the recursive one stays.
        wm.add(C1, "/p", WatchKind::Data);
        assert_eq!(wm.trigger(&changed("/p")), vec![C1]);
        assert!(!wm.contains(C1, "/p", watcher_type::DATA));
        assert!(wm.contains(C1, "/p", watcher_type::PERSISTENT_RECURSIVE));
    }

    #[test]
    fn behaviour_31_removal_sends_nothing_and_reports_presence() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/a", WatchKind::Data);
        assert!(wm.remove(C1, "/a", watcher_type::DATA));
        assert!(!wm.remove(C1, "/a", watcher_type::DATA));
        assert!(wm.trigger(&changed("/a")).is_empty());
        assert!(!wm.remove(C2, "/nothing", watcher_type::ANY));
    }

    #[test]
    fn remove_data_covers_exist_but_not_persistent() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/e", WatchKind::Exist);
        assert!(wm.remove(C1, "/e", watcher_type::DATA));
        assert!(!wm.contains(C1, "/e", watcher_type::ANY));

        wm.add(C1, "/p", WatchKind::Persistent);
        assert!(!wm.contains(C1, "/p", watcher_type::DATA));
        assert!(!wm.remove(C1, "/p", watcher_type::DATA));
        assert!(!wm.remove(C1, "/p", watcher_type::CHILDREN));
        assert!(wm.contains(C1, "/p", watcher_type::PERSISTENT));
    }

    #[test]
    fn remove_persistent_removes_both_halves_only() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Persistent);
        wm.add(C1, "/p", WatchKind::Data);
        wm.add(C1, "/p", WatchKind::PersistentRecursive);
        assert!(wm.remove(C1, "/p", watcher_type::PERSISTENT));
        assert!(!wm.contains(C1, "/p", watcher_type::PERSISTENT));
        assert!(!wm.remove(C1, "/p", watcher_type::PERSISTENT));
        // Child half gone: no ChildrenChanged any more.
        assert!(wm.trigger(&children("/p")).is_empty());
        // The one-shot and the recursive modes stay.
        assert!(wm.contains(C1, "/p", watcher_type::DATA));
        assert!(wm.contains(C1, "/p", watcher_type::PERSISTENT_RECURSIVE));
    }

    #[test]
    fn remove_persistent_recursive_stops_descendant_events() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/r", WatchKind::PersistentRecursive);
        wm.add(C1, "/r", WatchKind::Persistent);
        assert!(wm.remove(C1, "/r", watcher_type::PERSISTENT_RECURSIVE));
        assert!(!wm.remove(C1, "/r", watcher_type::PERSISTENT_RECURSIVE));
        assert!(wm.trigger(&created("/r/x")).is_empty());
        assert!(wm.contains(C1, "/r", watcher_type::PERSISTENT));
    }

    #[test]
    fn remove_children_only_one_shot_child() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Child);
        wm.add(C1, "/p", WatchKind::Data);
        assert!(wm.contains(C1, "/p", watcher_type::CHILDREN));
        assert!(wm.remove(C1, "/p", watcher_type::CHILDREN));
        assert!(!wm.contains(C1, "/p", watcher_type::CHILDREN));
        assert!(wm.contains(C1, "/p", watcher_type::DATA));
    }

    #[test]
    fn remove_any_removes_everything_on_the_path() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Child);
        wm.add(C1, "/p", WatchKind::Data);
        wm.add(C1, "/p", WatchKind::Persistent);
        wm.add(C1, "/p", WatchKind::PersistentRecursive);
        wm.add(C1, "/q", WatchKind::Data);
        wm.add(C2, "/p", WatchKind::Data);
        assert!(wm.contains(C1, "/p", watcher_type::ANY));
        assert!(wm.remove(C1, "/p", watcher_type::ANY));
        assert!(!wm.contains(C1, "/p", watcher_type::ANY));
        assert!(wm.trigger(&created("/p/x")).is_empty());
        assert!(wm.contains(C1, "/q", watcher_type::DATA));
        assert!(wm.contains(C2, "/p", watcher_type::DATA));
    }

    #[test]
    fn unknown_watcher_type_matches_nothing() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Data);
        assert!(!wm.contains(C1, "/p", 0));
        assert!(!wm.contains(C1, "/p", 6));
        assert!(!wm.remove(C1, "/p", 99));
        assert!(wm.contains(C1, "/p", watcher_type::DATA));
    }

    #[test]
    fn remove_connection_drops_all_its_watches() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/a", WatchKind::Data);
        wm.add(C1, "/a", WatchKind::Child);
        wm.add(C1, "/", WatchKind::PersistentRecursive);
        wm.add(C2, "/a", WatchKind::Data);
        wm.remove_connection(C1);
        assert_eq!(wm.trigger(&changed("/a")), vec![C2]);
        assert!(wm.trigger(&children("/a")).is_empty());
        assert!(wm.trigger(&created("/z")).is_empty());
        assert_eq!(wm.total_watch_count(), 0);
        // C2's watch fired, but as in ZooKeeper it stays counted, and
        // listed with no paths, until it closes.
        assert_eq!(wm.data_watch_connections(), 1);
        assert_eq!(
            wm.data_watches_by_connection(),
            BTreeMap::from([(C2, vec![])])
        );
        wm.remove_connection(C2);
        assert_eq!(wm.data_watch_connections(), 0);
        wm.remove_connection(C3);
    }

    #[test]
    fn trigger_output_is_sorted_and_unique() {
        let mut wm = WatchManager::new();
        for c in [7, 3, 9, 1, 5] {
            wm.add(ConnectionId(c), "/x", WatchKind::Data);
            wm.add(ConnectionId(c), "/", WatchKind::PersistentRecursive);
        }
        let fired = wm.trigger(&changed("/x"));
        assert_eq!(fired, [1, 3, 5, 7, 9].map(ConnectionId).to_vec());
    }

    #[test]
    fn unknown_event_type_notifies_nobody() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/a", WatchKind::Data);
        assert!(wm.trigger(&ev(event_type::NONE, "/a")).is_empty());
        assert!(wm.contains(C1, "/a", watcher_type::DATA));
    }

    #[test]
    fn behaviour_32_four_letter_words_count_data_side_only() {
        let mut wm = WatchManager::new();
        // The reference E example: "2 connections watching 2 paths",
        // "Total watches:3"; child watches are not listed.
        wm.add(C1, "/a", WatchKind::Data);
        wm.add(C1, "/b", WatchKind::Exist);
        wm.add(C2, "/a", WatchKind::Data);
        wm.add(C2, "/c", WatchKind::Child);
        wm.add(C3, "/d", WatchKind::Child);
        assert_eq!(wm.data_watch_connections(), 2);
        assert_eq!(wm.data_watch_paths(), 2);
        assert_eq!(wm.data_watch_count(), 3);
        assert_eq!(
            wm.data_watches_by_connection(),
            BTreeMap::from([(C1, strings(&["/a", "/b"])), (C2, strings(&["/a"]))])
        );
        assert_eq!(
            wm.data_watches_by_path(),
            BTreeMap::from([
                ("/a".to_string(), vec![C1, C2]),
                ("/b".to_string(), vec![C1])
            ])
        );
        assert_eq!(wm.total_watch_count(), 5);
    }

    #[test]
    fn several_modes_on_one_path_count_once_per_table() {
        let mut wm = WatchManager::new();
        wm.add(C1, "/p", WatchKind::Data);
        wm.add(C1, "/p", WatchKind::Data);
        wm.add(C1, "/p", WatchKind::Persistent);
        wm.add(C1, "/p", WatchKind::PersistentRecursive);
        assert_eq!(wm.data_watch_count(), 1);
        // Persistent adds a child-table entry too.
        assert_eq!(wm.total_watch_count(), 2);
    }

    /// A deliberately naive model of the two tables (scan everything, string
    /// prefix tests for ancestry) to check the indexed implementation
    /// against, op by op.
    mod model {
        use super::*;
        use proptest::prelude::*;

        const STANDARD: u8 = 1;
        const PERSISTENT: u8 = 2;
        const RECURSIVE: u8 = 4;
        const DATA: bool = false;
        const CHILD: bool = true;

        #[derive(Default)]
        struct Model {
            /// (is child table, connection, path) → mode flags.
            entries: BTreeMap<(bool, u64, String), u8>,
            /// Connections `wchs` counts: every one that added a data-table
            /// watch, until it closes or a removal empties its watches (a
            /// watch that fires leaves it counted, as in ZooKeeper).
            data_conns: BTreeSet<u64>,
        }

        fn is_ancestor(anc: &str, path: &str) -> bool {
            anc != path
                && if anc == "/" {
                    path.starts_with('/')
                } else {
                    path.starts_with(&format!("{anc}/"))
                }
        }

        impl Model {
            fn add_mode(&mut self, table: bool, c: u64, p: &str, m: u8) {
                *self.entries.entry((table, c, p.to_string())).or_insert(0) |= m;
                if table == DATA {
                    self.data_conns.insert(c);
                }
            }
            fn add(&mut self, c: u64, p: &str, kind: WatchKind) {
                match kind {
                    WatchKind::Data | WatchKind::Exist => self.add_mode(DATA, c, p, STANDARD),
                    WatchKind::Child => self.add_mode(CHILD, c, p, STANDARD),
                    WatchKind::Persistent => {
                        self.add_mode(DATA, c, p, PERSISTENT);
                        self.add_mode(CHILD, c, p, PERSISTENT);
                    }
                    WatchKind::PersistentRecursive => self.add_mode(DATA, c, p, RECURSIVE),
                }
            }
            fn trigger(&mut self, e: &WatchEvent) -> Vec<ConnectionId> {
                let tables: &[bool] = match e.event_type {
                    event_type::NODE_CREATED | event_type::NODE_DATA_CHANGED => &[DATA],
                    event_type::NODE_DELETED => &[DATA, CHILD],
                    event_type::NODE_CHILDREN_CHANGED => &[CHILD],
                    _ => &[],
                };
                let mut out = Vec::new();
                for (&(table, c, ref p), m) in self.entries.iter_mut() {
                    if !tables.contains(&table) {
                        continue;
                    }
                    if *p == e.path {
                        out.push(ConnectionId(c));
                        *m &= !STANDARD;
                    } else if is_ancestor(p, &e.path) && *m & RECURSIVE != 0 {
                        out.push(ConnectionId(c));
                    }
                }
                self.entries.retain(|_, m| *m != 0);
                out.sort();
                out.dedup();
                out
            }
            fn get(&self, table: bool, c: u64, p: &str) -> u8 {
                self.entries
                    .get(&(table, c, p.to_string()))
                    .copied()
                    .unwrap_or(0)
            }
            fn contains(&self, c: u64, p: &str, wt: i32) -> bool {
                match wt {
                    watcher_type::CHILDREN => self.get(CHILD, c, p) & STANDARD != 0,
                    watcher_type::DATA => self.get(DATA, c, p) & STANDARD != 0,
                    watcher_type::PERSISTENT => self.get(DATA, c, p) & PERSISTENT != 0,
                    watcher_type::PERSISTENT_RECURSIVE => self.get(DATA, c, p) & RECURSIVE != 0,
                    watcher_type::ANY => self.get(CHILD, c, p) != 0 || self.get(DATA, c, p) != 0,
                    _ => false,
                }
            }
            fn clear(&mut self, table: bool, c: u64, p: &str, m: u8) -> bool {
                let key = (table, c, p.to_string());
                let Some(old) = self.entries.get(&key).copied() else {
                    return false;
                };
                let new = old & !m;
                if new == 0 {
                    self.entries.remove(&key);
                    let left = self.entries.keys().any(|k| k.0 == DATA && k.1 == c);
                    if table == DATA && !left {
                        self.data_conns.remove(&c);
                    }
                } else {
                    self.entries.insert(key, new);
                }
                new != old
            }
            fn remove(&mut self, c: u64, p: &str, wt: i32) -> bool {
                match wt {
                    watcher_type::CHILDREN => self.clear(CHILD, c, p, STANDARD),
                    watcher_type::DATA => self.clear(DATA, c, p, STANDARD),
                    watcher_type::PERSISTENT => {
                        let a = self.clear(CHILD, c, p, PERSISTENT);
                        let b = self.clear(DATA, c, p, PERSISTENT);
                        a || b
                    }
                    watcher_type::PERSISTENT_RECURSIVE => self.clear(DATA, c, p, RECURSIVE),
                    watcher_type::ANY => {
                        let a = self.clear(CHILD, c, p, 7);
                        let b = self.clear(DATA, c, p, 7);
                        a || b
                    }
                    _ => false,
                }
            }
            fn remove_connection(&mut self, conn: u64) {
                self.entries.retain(|&(_, c, _), _| c != conn);
                self.data_conns.remove(&conn);
            }
            fn data_by_path(&self) -> BTreeMap<String, Vec<ConnectionId>> {
                let mut out: BTreeMap<String, Vec<ConnectionId>> = BTreeMap::new();
                for (_, c, p) in self.entries.keys().filter(|k| k.0 == DATA) {
                    out.entry(p.clone()).or_default().push(ConnectionId(*c));
                }
                for conns in out.values_mut() {
                    conns.sort();
                }
                out
            }
        }

        const PATHS: [&str; 7] = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/ab/c", "/b"];

        #[derive(Clone, Debug)]
        enum Op {
            Add(u64, usize, WatchKind),
            Trigger(i32, usize),
            Remove(u64, usize, i32),
            RemoveConnection(u64),
            SetWatches(u64, i64, Vec<usize>, Vec<usize>, Vec<usize>),
        }

        fn kind() -> impl Strategy<Value = WatchKind> {
            prop_oneof![
                Just(WatchKind::Data),
                Just(WatchKind::Exist),
                Just(WatchKind::Child),
                Just(WatchKind::Persistent),
                Just(WatchKind::PersistentRecursive),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            let path = 0..PATHS.len();
            let paths = proptest::collection::vec(0..PATHS.len(), 0..3);
            prop_oneof![
                4 => (1..4u64, path.clone(), kind()).prop_map(|(c, p, k)| Op::Add(c, p, k)),
                3 => (1..5i32, path.clone()).prop_map(|(t, p)| Op::Trigger(t, p)),
                2 => (1..4u64, path, 0..7i32).prop_map(|(c, p, t)| Op::Remove(c, p, t)),
                1 => (1..4u64).prop_map(Op::RemoveConnection),
                1 => (1..4u64, 0..20i64, paths.clone(), paths.clone(), paths)
                    .prop_map(|(c, z, d, e, ch)| Op::SetWatches(c, z, d, e, ch)),
            ]
        }

        /// The tree for SetWatches: odd-indexed paths exist, with
        /// mzxid = 3 × index and pzxid = 5 × index.
        fn lookup(path: &str) -> Option<(i64, i64)> {
            let i = PATHS.iter().position(|p| *p == path)? as i64;
            (i % 2 == 1).then_some((3 * i, 5 * i))
        }

        fn model_set_watches(
            m: &mut Model,
            c: u64,
            z: i64,
            data: &[String],
            exist: &[String],
            child: &[String],
        ) -> Vec<WatchEvent> {
            let mut events = Vec::new();
            for p in data {
                match lookup(p) {
                    None => events.push(WatchEvent {
                        event_type: event_type::NODE_DELETED,
                        path: p.clone(),
                    }),
                    Some((mz, _)) if mz > z => events.push(WatchEvent {
                        event_type: event_type::NODE_DATA_CHANGED,
                        path: p.clone(),
                    }),
                    Some(_) => m.add(c, p, WatchKind::Data),
                }
            }
            for p in exist {
                match lookup(p) {
                    Some(_) => events.push(WatchEvent {
                        event_type: event_type::NODE_CREATED,
                        path: p.clone(),
                    }),
                    None => m.add(c, p, WatchKind::Exist),
                }
            }
            for p in child {
                match lookup(p) {
                    None => events.push(WatchEvent {
                        event_type: event_type::NODE_DELETED,
                        path: p.clone(),
                    }),
                    Some((_, pz)) if pz > z => events.push(WatchEvent {
                        event_type: event_type::NODE_CHILDREN_CHANGED,
                        path: p.clone(),
                    }),
                    Some(_) => m.add(c, p, WatchKind::Child),
                }
            }
            events
        }

        proptest! {
            #[test]
            fn matches_naive_model(ops in proptest::collection::vec(op(), 1..60)) {
                let mut wm = WatchManager::new();
                let mut m = Model::default();
                for op in ops {
                    match op {
                        Op::Add(c, p, k) => {
                            wm.add(ConnectionId(c), PATHS[p], k);
                            m.add(c, PATHS[p], k);
                        }
                        Op::Trigger(t, p) => {
                            let e = ev(t, PATHS[p]);
                            prop_assert_eq!(wm.trigger(&e), m.trigger(&e));
                        }
                        Op::Remove(c, p, t) => {
                            prop_assert_eq!(
                                wm.remove(ConnectionId(c), PATHS[p], t),
                                m.remove(c, PATHS[p], t)
                            );
                        }
                        Op::RemoveConnection(c) => {
                            wm.remove_connection(ConnectionId(c));
                            m.remove_connection(c);
                        }
                        Op::SetWatches(c, z, d, e, ch) => {
                            let to = |v: &[usize]| -> Vec<String> {
                                v.iter().map(|&i| PATHS[i].to_string()).collect()
                            };
                            let (d, e, ch) = (to(&d), to(&e), to(&ch));
                            let got = wm.set_watches(ConnectionId(c), z, &d, &e, &ch, &[], &[], lookup);
                            prop_assert_eq!(got, model_set_watches(&mut m, c, z, &d, &e, &ch));
                        }
                    }
                    for c in 1..4 {
                        for p in PATHS {
                            for t in 1..6 {
                                prop_assert_eq!(
                                    wm.contains(ConnectionId(c), p, t),
                                    m.contains(c, p, t),
                                    "contains({}, {}, {})", c, p, t
                                );
                            }
                        }
                    }
                    let by_path = m.data_by_path();
                    prop_assert_eq!(wm.data_watches_by_path(), by_path.clone());
                    prop_assert_eq!(wm.data_watch_paths(), by_path.len());
                    prop_assert_eq!(
                        wm.data_watch_count(),
                        m.entries.keys().filter(|k| k.0 == DATA).count()
                    );
                    prop_assert_eq!(wm.total_watch_count(), m.entries.len());
                    prop_assert_eq!(wm.data_watch_connections(), m.data_conns.len());
                    prop_assert_eq!(
                        wm.data_watches_by_connection().keys().map(|c| c.0).collect::<BTreeSet<_>>(),
                        m.data_conns.clone()
                    );
                    // The recursive counter never drifts from the table.
                    let recursive = m.entries.values().filter(|&&v| v & RECURSIVE != 0).count();
                    prop_assert_eq!(wm.data.recursive, recursive);
                }
            }
        }
    }
}
