//! The AdminServer's commands: what the four-letter words report, as the
//! JSON documents ZooKeeper 3.8's `JettyAdminServer` serves under
//! `/commands/<name>`.
//!
//! Pure rendering, as [`crate::four_letter`] is for the text words: the
//! server fills a [`ServerStatus`] and an [`AdminView`] when a command
//! arrives, and [`render`] turns the command, its query arguments and
//! those figures into the document. The HTTP listener is
//! [`crate::admin_server`]; resetting statistics and setting the trace mask
//! are the server's job ([`effect`] says which).
//!
//! The documents follow ZooKeeper's `Commands` (checked against Debian's
//! ZooKeeper 3.8.0 with its AdminServer on): the command's own keys, then
//! `command` and `error` (null unless it failed); an unknown command or a
//! server that is not serving answers only those two, with the error set.
//! They are written as Jackson's default pretty printer writes them
//! (`"key" : value`, two-space indents, arrays on one line), so a reader
//! that compares bytes sees ZooKeeper's layout.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde_json::ser::Formatter;
use serde_json::{json, Map, Value};
use zab_wire::types::{ServerId, Zxid};

use crate::config::{Config, HostPort, PeerType};
use crate::four_letter::{
    self, java_double, monitor_values, ConnectionStatus, Metric, ServerMode, ServerStatus,
    SessionDump, NOT_SERVING,
};

/// One command: its names, the primary first (the one the listing links
/// and the answer's `command` names), and whether it needs a serving server.
#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    pub names: &'static [&'static str],
    pub server_required: bool,
}

impl Command {
    pub fn primary(&self) -> &'static str {
        self.names[0]
    }
}

const fn cmd(names: &'static [&'static str], server_required: bool) -> Command {
    Command {
        names,
        server_required,
    }
}

/// ZooKeeper 3.8.0's commands (`Commands`' static block), with its aliases.
pub const COMMANDS: &[Command] = &[
    cmd(&["connection_stat_reset", "crst"], true),
    cmd(&["configuration", "conf", "config"], true),
    cmd(&["connections", "cons"], true),
    cmd(&["hash"], true),
    cmd(&["dirs"], true),
    cmd(&["dump"], true),
    cmd(&["environment", "env", "envi"], false),
    cmd(&["get_trace_mask", "gtmk"], false),
    cmd(&["initial_configuration", "icfg"], true),
    cmd(&["is_read_only", "isro"], true),
    cmd(&["last_snapshot", "lsnp"], true),
    cmd(&["leader", "lead"], true),
    cmd(&["monitor", "mntr"], false),
    cmd(&["observer_connection_stat_reset", "orst"], true),
    cmd(&["ruok"], true),
    cmd(&["set_trace_mask", "stmk"], false),
    cmd(&["server_stats", "srvr"], true),
    cmd(&["stats", "stat"], true),
    cmd(&["stat_reset", "srst"], true),
    cmd(&["observers", "obsr"], true),
    cmd(&["system_properties", "sysp"], false),
    cmd(&["voting_view"], true),
    cmd(&["watches", "wchc"], true),
    cmd(&["watches_by_path", "wchp"], true),
    cmd(&["watch_summary", "wchs"], true),
    cmd(&["zabstate"], false),
];

/// The command a URL names, by any of its names.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// What the server must do before it collects the figures of `command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// `stat_reset`: the server's request statistics.
    ResetStats,
    /// `connection_stat_reset`: every connection's statistics.
    ResetConnectionStats,
    /// `set_trace_mask` with a valid `traceMask`.
    SetTraceMask(i64),
}

/// The effect of running `command` with these arguments.
pub fn effect(command: &Command, args: &BTreeMap<String, String>) -> Effect {
    match command.primary() {
        "stat_reset" => Effect::ResetStats,
        "connection_stat_reset" => Effect::ResetConnectionStats,
        "set_trace_mask" => match args.get("traceMask").map(|v| v.parse::<i64>()) {
            Some(Ok(mask)) => Effect::SetTraceMask(mask),
            _ => Effect::None,
        },
        _ => Effect::None,
    }
}

/// One observer as the leader's `observers` command lists it: ZooKeeper's
/// `LearnerHandler.getLearnerHandlerInfo`, field for field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LearnerHandlerInfo {
    /// `/ip:port`, as Java prints a socket address.
    pub remote_socket_address: String,
    pub sid: ServerId,
    /// When its link opened, ms since the epoch.
    pub established_ms: i64,
    /// Packets the leader holds for it and has not handed to its link yet
    /// (those queued behind a snapshot being streamed), and their size as
    /// ZooKeeper estimates a packet's (28 bytes and its data).
    pub queued_packets: u64,
    pub queued_packets_size: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Writes it forwarded (REQUEST packets).
    pub requests: u64,
    /// The zxid of the last packet sent that carried one, -1 before.
    pub last_zxid: i64,
}

/// What only the admin commands show, besides the [`ServerStatus`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminView {
    /// The leader this server follows or is; `None` while electing.
    pub leader_id: Option<ServerId>,
    /// ZooKeeper's `ZabState`, lower case: `election`, `discovery`,
    /// `synchronization` or `broadcast`.
    pub zab_state: &'static str,
    /// The newest snapshot's zxid, and when it was saved (Unix seconds;
    /// `None` if a build that kept no time saved it).
    pub last_snapshot: Option<(Zxid, Option<u64>)>,
    /// On a leader, the observers it syncs.
    pub observers: Vec<LearnerHandlerInfo>,
}

/// The listing ZooKeeper serves at the command URL itself: a link per
/// primary name, sorted.
pub fn links(command_url: &str) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(Command::primary).collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|n| format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n"))
        .collect()
}

/// The JSON document for `name` (any of a command's names).
pub fn render(
    name: &str,
    args: &BTreeMap<String, String>,
    status: &ServerStatus,
    view: &AdminView,
    cfg: &Config,
) -> String {
    let Some(command) = find(name) else {
        return failed(name, &format!("Unknown command: {name}"));
    };
    if !status.serving && (command.server_required || command.primary() == "monitor") {
        // ZooKeeper's `monitor` needs no server but reads one; zab says
        // what its `mntr` says when none is serving. The command is named
        // as the URL names it (`Commands.runCommand`'s `cmdName`).
        return failed(name, NOT_SERVING);
    }
    let mut doc = Map::new();
    let mut put = |k: &str, v: Value| {
        doc.insert(k.to_owned(), v);
    };
    let quorum = status.mode != ServerMode::Standalone;
    match command.primary() {
        "configuration" => {
            put(
                "client_port",
                json!(status.client_port.map_or(-1, i32::from)),
            );
            put("data_dir", json!(status.data_dir.display().to_string()));
            put("data_log_dir", json!(status.log_dir.display().to_string()));
            put("tick_time", json!(cfg.tick_time_ms));
            put("max_client_cnxns", json!(cfg.max_client_cnxns));
            put("min_session_timeout", json!(cfg.min_session_timeout_ms));
            put("max_session_timeout", json!(cfg.max_session_timeout_ms));
            put("server_id", json!(status.server_id.0));
            put(
                "client_port_listen_backlog",
                json!(cfg.client_port_listen_backlog),
            );
        }
        "connections" => {
            put("connections", connections(status, false));
            put("secure_connections", json!([]));
        }
        "hash" => {
            let digests = status
                .digests
                .iter()
                .map(|(zxid, digest)| {
                    // `DataTree.ZxidDigest`; digest version 2 is the one
                    // ZooKeeper 3.6+ computes.
                    json!({"zxid": zxid.0, "digest_version": 2, "digest": digest})
                })
                .collect();
            put("digests", Value::Array(digests));
        }
        "dirs" => {
            put("datadir_size", json!(status.data_dir_size));
            put("logdir_size", json!(status.log_dir_size));
        }
        "dump" => {
            // A learner's `LearnerSessionTracker` has no expiry queue: an
            // empty map (ZooKeeper's `getSessionExpiryMap`). A leader's
            // lists its local sessions' buckets, then the global ones over
            // them (`LeaderSessionTracker.getSessionExpiryMap`).
            let mut expiry = Map::new();
            if let SessionDump::Expiry(buckets) = &status.sessions {
                let local = status.local_sessions_dump.iter().flatten();
                for b in local.chain(buckets) {
                    let ids = b.elements.iter().map(|s| json!(s.0)).collect();
                    expiry.insert(b.expire_at_ms.to_string(), Value::Array(ids));
                }
            }
            put("expiry_time_to_session_ids", Value::Object(expiry));
            let ephemerals = status
                .ephemerals
                .iter()
                .map(|(id, paths)| (id.0.to_string(), json!(paths)))
                .collect();
            put("session_id_to_ephemeral_paths", Value::Object(ephemerals));
        }
        "environment" => {
            for (k, v) in four_letter::environment_entries(status) {
                put(&k, json!(v));
            }
        }
        "get_trace_mask" => put("tracemask", json!(status.trace_mask)),
        "initial_configuration" => put("initial_configuration", json!(cfg.initial_config)),
        "is_read_only" => put("read_only", json!(status.mode == ServerMode::ReadOnly)),
        "last_snapshot" => {
            // `Long.toHexString`, -1 when there is none. ZooKeeper's
            // timestamp is the snapshot file's mtime in seconds; zab's is
            // the time the store recorded with the snapshot.
            let zxid = view.last_snapshot.map_or(-1, |(z, _)| z.0);
            let saved = view.last_snapshot.and_then(|(_, t)| t);
            put("zxid", json!(format!("{:x}", zxid)));
            put("timestamp", json!(saved.map_or(-1, |t| t as i64)));
        }
        "leader" => {
            if !quorum {
                return failed_first(command.primary(), "server is not initialized");
            }
            let leader = view.leader_id.and_then(|id| cfg.servers.get(&id));
            put("is_leader", json!(status.mode == ServerMode::Leader));
            put(
                "leader_id",
                json!(view.leader_id.map_or(-1, |id| id.0 as i64)),
            );
            put("leader_ip", json!(leader.map_or("", |s| s.host.as_str())));
        }
        "monitor" => {
            for (key, value) in monitor_values(status) {
                let v = match value {
                    Metric::Int(i) => json!(i),
                    Metric::Double(d) => json!(d),
                    Metric::Text(t) => json!(t),
                };
                put(&key, v);
            }
        }
        "observers" => {
            let list = view
                .observers
                .iter()
                .map(|o| {
                    json!({
                        "remote_socket_address": o.remote_socket_address,
                        "sid": o.sid.0,
                        "established": o.established_ms,
                        "queued_packets": o.queued_packets,
                        "queued_packets_size": o.queued_packets_size,
                        "packets_received": o.packets_received,
                        "packets_sent": o.packets_sent,
                        "requests": o.requests,
                        "last_zxid": o.last_zxid,
                    })
                })
                .collect();
            put("synced_observers", json!(view.observers.len()));
            put("observers", Value::Array(list));
        }
        "set_trace_mask" => match args.get("traceMask") {
            None => {
                return failed_first(
                    command.primary(),
                    "setTraceMask requires long traceMask argument",
                )
            }
            Some(v) => match v.parse::<i64>() {
                Ok(mask) => put("tracemask", json!(mask)),
                Err(_) => {
                    return failed_first(
                        command.primary(),
                        &format!("setTraceMask requires long traceMask argument, got {v}"),
                    )
                }
            },
        },
        "server_stats" | "stats" => {
            put("version", json!(status.version));
            put("read_only", json!(status.mode == ServerMode::ReadOnly));
            put("server_stats", server_stats(status));
            put(
                "client_response",
                buffer_sizes(status.client_response_sizes),
            );
            if let Some(l) = &status.leader {
                put("proposal_stats", buffer_sizes(l.proposal_sizes));
            }
            put("node_count", json!(status.node_count));
            if command.primary() == "stats" {
                put("connections", connections(status, true));
                put("secure_connections", json!([]));
            }
        }
        // zab runs no JVM: it has no system properties to list.
        "system_properties" => {}
        "voting_view" => {
            let mut view = Map::new();
            if quorum {
                for s in cfg.voters() {
                    view.insert(s.id.0.to_string(), server_view(s, cfg));
                }
            }
            put("current_config", Value::Object(view));
        }
        "watches" => {
            let map = status
                .data_watches
                .iter()
                .map(|(id, paths)| (id.0.to_string(), json!(paths)))
                .collect();
            put("session_id_to_watched_paths", Value::Object(map));
        }
        "watches_by_path" => {
            let mut by_path: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for (id, paths) in &status.data_watches {
                for p in paths {
                    by_path.entry(p).or_default().push(id.0);
                }
            }
            let map = by_path
                .into_iter()
                .map(|(p, ids)| (p.to_owned(), json!(ids)))
                .collect();
            put("path_to_session_ids", Value::Object(map));
        }
        "watch_summary" => {
            let paths: BTreeSet<&String> = status.data_watches.values().flatten().collect();
            let total: usize = status.data_watches.values().map(BTreeSet::len).sum();
            put("num_connections", json!(status.data_watches.len()));
            put("num_paths", json!(paths.len()));
            put("num_total_watches", json!(total));
        }
        // ZooKeeper answers for its quorum server only once it broadcasts
        // (`ZabStateCommand`: the admin server has no
        // `QuorumZooKeeperServer` while electing or syncing, nor in
        // read-only mode): before, no made-up zxid.
        "zabstate" => match cfg
            .my_server()
            .filter(|_| quorum && status.serving && status.mode != ServerMode::ReadOnly)
        {
            Some(me) => {
                put("myid", json!(me.id.0));
                put("is_leader", json!(status.mode == ServerMode::Leader));
                put("quorum_address", multiple_addresses(&me.quorum_addr()));
                put("election_address", multiple_addresses(&me.election_addr()));
                put("client_address", json!(client_address(me, cfg)));
                put("voting", json!(me.peer_type == PeerType::Participant));
                let zxid = status.last_zxid;
                put("last_zxid", json!(format!("0x{:x}", zxid.0)));
                put("zab_epoch", json!(zxid.0 >> 32));
                put("zab_counter", json!(zxid.0 & 0xffff_ffff));
                put("zabstate", json!(view.zab_state));
            }
            None => {
                put("voting", json!(false));
                put("zabstate", json!(""));
            }
        },
        // crst, orst, srst, ruok: nothing but the command's name.
        _ => {}
    }
    doc.insert("command".into(), json!(command.primary()));
    doc.insert("error".into(), Value::Null);
    to_jackson(&Value::Object(doc))
}

/// `{"command": name, "error": error}`: an unknown command, or a server
/// that is not serving.
fn failed(name: &str, error: &str) -> String {
    to_jackson(&json!({"command": name, "error": error}))
}

/// A command that put its own `error` into its answer: ZooKeeper's
/// `CommandResponse.toMap` then lists `error` before `command`.
fn failed_first(name: &str, error: &str) -> String {
    to_jackson(&json!({"error": error, "command": name}))
}

/// `ServerCnxn.getConnectionInfo(brief)`.
fn connections(status: &ServerStatus, brief: bool) -> Value {
    Value::Array(
        status
            .connections
            .iter()
            .map(|c| connection(c, brief))
            .collect(),
    )
}

fn connection(c: &ConnectionStatus, brief: bool) -> Value {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), json!(c.remote.to_string()));
    m.insert("interest_ops".into(), json!(c.interest_ops));
    m.insert("outstanding_requests".into(), json!(c.queued));
    m.insert("packets_received".into(), json!(c.recved));
    m.insert("packets_sent".into(), json!(c.sent));
    if let (false, Some(s)) = (brief, &c.session) {
        m.insert("session_id".into(), json!(s.session_id.0));
        m.insert("last_operation".into(), json!(s.last_op));
        m.insert("established".into(), json!(s.established_ms));
        m.insert("session_timeout".into(), json!(s.timeout_ms));
        m.insert("last_cxid".into(), json!(s.last_cxid));
        m.insert("last_zxid".into(), json!(s.last_zxid.0));
        m.insert("last_response_time".into(), json!(s.last_response_ms));
        m.insert("last_latency".into(), json!(s.last_latency_ms));
        m.insert("min_latency".into(), json!(s.min_latency_ms));
        m.insert("avg_latency".into(), json!(s.avg_latency_ms));
        m.insert("max_latency".into(), json!(s.max_latency_ms));
    }
    Value::Object(m)
}

/// `ServerStats` as Jackson writes the bean (its getters, snake case).
fn server_stats(s: &ServerStatus) -> Value {
    json!({
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "fsync_threshold_exceed_count": s.fsync_threshold_exceed_count,
        "client_response_stats": buffer_sizes(s.client_response_sizes),
        "data_dir_size": s.data_dir_size,
        "log_dir_size": s.log_dir_size,
        "provider_null": false,
        "server_state": s.mode.as_str(),
        "last_processed_zxid": s.last_zxid.0,
        "outstanding_requests": s.outstanding_requests,
        "avg_latency": (s.latency.avg * 10_000.0).round() / 10_000.0,
        "max_latency": s.latency.max,
        "min_latency": s.latency.min,
        "num_alive_client_connections": s.connections.len(),
        "uptime": s.uptime_ms,
        "auth_failed_count": s.auth_failed_count,
        // Connections without a client certificate: not counted by zab
        // (as `mntr`'s gauges).
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
    })
}

fn buffer_sizes(b: four_letter::BufferSizes) -> Value {
    json!({"last_buffer_size": b.last, "min_buffer_size": b.min, "max_buffer_size": b.max})
}

/// `VotingViewCommand.QuorumServerView`.
fn server_view(s: &crate::config::QuorumServer, cfg: &Config) -> Value {
    json!({
        "server_addresses": [s.quorum_addr().to_string()],
        "election_addresses": [s.election_addr().to_string()],
        "client_address": client_address(s, cfg),
        "learner_type": match s.peer_type {
            PeerType::Participant => "participant",
            PeerType::Observer => "observer",
        },
    })
}

/// A member's client address as ZooKeeper knows it: the one on its server
/// line, and for this server its own client port; `""` for another
/// server's line without one.
fn client_address(s: &crate::config::QuorumServer, cfg: &Config) -> String {
    match &s.client_addr {
        Some(a) => a.to_string(),
        None if Some(s.id) == cfg.my_id => cfg
            .client_listen_addr()
            .map_or_else(String::new, |a| a.to_string()),
        None => String::new(),
    }
}

/// ZooKeeper's `MultipleAddresses` of one address, as Jackson writes the
/// bean `zabstate` hands it.
fn multiple_addresses(a: &HostPort) -> Value {
    let one = a.to_string();
    json!({
        "empty": false,
        "all_addresses": [one],
        "all_reachable_addresses": [one],
        "one": one,
        "reachable_address": one,
        "wildcard_addresses": [format!("0.0.0.0:{}", a.port)],
        "all_ports": [a.port],
        "all_host_strings": [a.host],
        "all_reachable_addresses_or_all": [one],
        "reachable_or_one": one,
    })
}

/// `value` as Jackson's `DefaultPrettyPrinter` writes it.
pub fn to_jackson(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Jackson::default());
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde::Serialize::serialize(value, &mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// Jackson's default pretty printer: `"key" : value`, objects indented two
/// spaces per level and `{ }` when empty, arrays on one line as `[ a, b ]`
/// (they do not indent what they hold), doubles as Java prints them.
#[derive(Default)]
struct Jackson {
    /// Open objects.
    nesting: usize,
    /// For each open object or array, whether it holds anything yet.
    has_value: Vec<bool>,
}

impl Jackson {
    fn newline_indent<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.nesting {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl Formatter for Jackson {
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.nesting += 1;
        self.has_value.push(false);
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.nesting = self.nesting.saturating_sub(1);
        if self.has_value.pop().unwrap_or(false) {
            self.newline_indent(w)?;
            w.write_all(b"}")
        } else {
            w.write_all(b" }")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b" : ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if let Some(v) = self.has_value.last_mut() {
            *v = true;
        }
        Ok(())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.has_value.push(false);
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.has_value.pop();
        w.write_all(b" ]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        w.write_all(if first { b" " } else { b", " })
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if let Some(v) = self.has_value.last_mut() {
            *v = true;
        }
        Ok(())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(java_double(value).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::four_letter::ConnectionSession;

    fn cfg() -> Config {
        Config::parse("dataDir=/d\nclientPort=2181\ntickTime=2000", None).unwrap()
    }

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn jackson_layout() {
        let v = json!({
            "a": 1,
            "empty": {},
            "none": [],
            "list": [1, 2],
            "objs": [{"x": 0.0, "y": "s"}, {"z": null}],
            "avg": 2.3333,
        });
        assert_eq!(
            to_jackson(&v),
            "{\n  \"a\" : 1,\n  \"empty\" : { },\n  \"none\" : [ ],\n  \"list\" : [ 1, 2 ],\n  \
             \"objs\" : [ {\n    \"x\" : 0.0,\n    \"y\" : \"s\"\n  }, {\n    \"z\" : null\n  } ],\n  \
             \"avg\" : 2.3333\n}"
        );
    }

    #[test]
    fn every_name_finds_one_command() {
        let mut primaries: Vec<&str> = COMMANDS.iter().map(Command::primary).collect();
        primaries.sort_unstable();
        primaries.dedup();
        assert_eq!(primaries.len(), 26);
        let names: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| c.names.iter().copied())
            .collect();
        for n in &names {
            assert_eq!(names.iter().filter(|m| *m == n).count(), 1, "{n}");
        }
        assert_eq!(find("wchc").map(Command::primary), Some("watches"));
        assert_eq!(find("config").map(Command::primary), Some("configuration"));
        assert!(find("nosuch").is_none());
        assert_eq!(
            links("/c").lines().next(),
            Some("<a href=\"/c/configuration\">configuration</a>")
        );
    }

    #[test]
    fn effects_of_resets_and_the_trace_mask() {
        let c = |n| find(n).unwrap();
        assert_eq!(effect(c("srst"), &args(&[])), Effect::ResetStats);
        assert_eq!(effect(c("crst"), &args(&[])), Effect::ResetConnectionStats);
        assert_eq!(
            effect(c("stmk"), &args(&[("traceMask", "7")])),
            Effect::SetTraceMask(7)
        );
        assert_eq!(
            effect(c("stmk"), &args(&[("traceMask", "x")])),
            Effect::None
        );
        assert_eq!(effect(c("mntr"), &args(&[])), Effect::None);
    }

    #[test]
    fn a_server_not_serving_answers_only_what_needs_no_server() {
        let status = ServerStatus {
            serving: false,
            mode: ServerMode::Follower,
            ..ServerStatus::default()
        };
        let view = AdminView::default();
        let ruok = render("ruok", &args(&[]), &status, &view, &cfg());
        assert_eq!(
            ruok,
            format!("{{\n  \"command\" : \"ruok\",\n  \"error\" : \"{NOT_SERVING}\"\n}}")
        );
        assert!(render("mntr", &args(&[]), &status, &view, &cfg()).contains(NOT_SERVING));
        // Named as the URL names it, not by the command's first name.
        let srvr = render("srvr", &args(&[]), &status, &view, &cfg());
        assert!(srvr.contains("\"command\" : \"srvr\""), "{srvr}");
        // zabstate: voting false and no state, as ZooKeeper while electing.
        let member = Config::parse(
            "dataDir=/d\nclientPort=2181\ninitLimit=5\nsyncLimit=2\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
             server.3=127.0.0.1:2890:3890\n",
            Some("1"),
        )
        .unwrap();
        let zab = render("zabstate", &args(&[]), &status, &view, &member);
        assert!(
            zab.contains("\"voting\" : false")
                && zab.contains("\"zabstate\" : \"\"")
                && !zab.contains("last_zxid"),
            "{zab}"
        );
        let gtmk = render("gtmk", &args(&[]), &status, &view, &cfg());
        assert!(gtmk.contains("\"tracemask\"") && gtmk.contains("\"error\" : null"));
    }

    #[test]
    fn connections_in_full_and_brief() {
        let status = ServerStatus {
            connections: vec![ConnectionStatus {
                remote: "127.0.0.1:5000".parse().unwrap(),
                interest_ops: 1,
                queued: 0,
                recved: 3,
                sent: 2,
                session: Some(ConnectionSession {
                    session_id: zab_wire::types::SessionId(0x100),
                    last_op: "GETD".into(),
                    established_ms: 10,
                    timeout_ms: 4000,
                    last_cxid: 2,
                    last_zxid: Zxid(5),
                    last_response_ms: 20,
                    last_latency_ms: 1,
                    min_latency_ms: 0,
                    avg_latency_ms: 1,
                    max_latency_ms: 2,
                }),
            }],
            ..ServerStatus::default()
        };
        let view = AdminView::default();
        let cons: Value =
            serde_json::from_str(&render("cons", &args(&[]), &status, &view, &cfg())).unwrap();
        let c = &cons["connections"][0];
        assert_eq!(c["remote_socket_address"], "127.0.0.1:5000");
        assert_eq!(
            (c["session_id"].as_i64(), c["last_operation"].as_str()),
            (Some(256), Some("GETD"))
        );
        let stat: Value =
            serde_json::from_str(&render("stat", &args(&[]), &status, &view, &cfg())).unwrap();
        let brief = stat["connections"][0].as_object().unwrap();
        assert_eq!(
            brief.keys().collect::<Vec<_>>(),
            [
                "remote_socket_address",
                "interest_ops",
                "outstanding_requests",
                "packets_received",
                "packets_sent"
            ]
        );
    }
}
