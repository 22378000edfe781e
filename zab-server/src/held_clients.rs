//! Client connections that arrive while a quorum server is not serving
//! (electing a leader, syncing with it): held, with everything they send,
//! until the server serves again, then handed to the pipeline in order.
//!
//! ZooKeeper closes such a connection at once ("ZooKeeperServer not
//! running"), and the client then backs off before its next attempt: the
//! Rust `zookeeper-client` waits 100 ms × servers after a full round of
//! refusals, the Java client up to 1 s before every reconnect. After a
//! leader dies the survivors usually serve again within tens of
//! milliseconds, so that back-off, not the election, made most of zab's
//! failover time (issue 4). Holding is bounded ([`HOLD_MS`]), so a client
//! of a server cut off from its quorum is still let go soon enough to try
//! another server.

use std::collections::BTreeMap;

use zab_tree::watch_manager::ConnectionId;

use crate::pipeline::Input;

/// How long a connection is held before it is closed after all, unless
/// zoo.cfg says otherwise (`zab.connectHoldMs`). An election and sync on a
/// healthy ensemble take tens of milliseconds; a second is about what a
/// Java client would have waited before retrying.
pub const HOLD_MS: u64 = 1_000;

/// Most frames one held connection may send before it is closed: a client
/// sends its connect request and a few more (auth, setWatches) before it
/// waits for answers.
const MAX_HELD_FRAMES: usize = 64;

/// What became of an input offered to [`HeldClients::hold`].
#[derive(Debug, PartialEq, Eq)]
pub enum Hold {
    /// Kept, to be replayed by [`HeldClients::release`].
    Held,
    /// The connection sent too much while held: close it.
    Close(ConnectionId),
    /// Not for a held connection (or a disconnect that ended one): nothing
    /// to do.
    Ignored,
}

#[derive(Debug)]
struct Held {
    since_ms: i64,
    inputs: Vec<Input>,
}

/// The held connections, by id.
#[derive(Debug)]
pub struct HeldClients {
    hold_ms: i64,
    conns: BTreeMap<ConnectionId, Held>,
}

impl Default for HeldClients {
    fn default() -> Self {
        HeldClients::new(HOLD_MS)
    }
}

impl HeldClients {
    /// Holds connections for up to `hold_ms`; 0 holds none (each is closed
    /// as it arrives, as ZooKeeper does).
    pub fn new(hold_ms: u64) -> Self {
        HeldClients {
            hold_ms: i64::try_from(hold_ms).unwrap_or(i64::MAX),
            conns: BTreeMap::new(),
        }
    }

    /// Offers a client input that arrived while not serving.
    pub fn hold(&mut self, now_ms: i64, input: Input) -> Hold {
        match input {
            Input::Accepted { conn, .. } if self.hold_ms == 0 => Hold::Close(conn),
            Input::Accepted { conn, .. } => {
                self.conns.insert(
                    conn,
                    Held {
                        since_ms: now_ms,
                        inputs: vec![input],
                    },
                );
                Hold::Held
            }
            Input::Connect { conn, .. } | Input::Request { conn, .. } => {
                let Some(held) = self.conns.get_mut(&conn) else {
                    return Hold::Ignored;
                };
                if held.inputs.len() >= MAX_HELD_FRAMES {
                    self.conns.remove(&conn);
                    return Hold::Close(conn);
                }
                held.inputs.push(input);
                Hold::Held
            }
            Input::Disconnected { conn } => {
                self.conns.remove(&conn);
                Hold::Ignored
            }
            _ => Hold::Ignored,
        }
    }

    /// Whether `conn` is held (its writer must outlive a role change).
    pub fn contains(&self, conn: ConnectionId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The connections held for their whole hold time, which the caller
    /// closes; they are forgotten.
    pub fn expire(&mut self, now_ms: i64) -> Vec<ConnectionId> {
        let expired: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, h)| now_ms - h.since_ms >= self.hold_ms)
            .map(|(c, _)| *c)
            .collect();
        for c in &expired {
            self.conns.remove(c);
        }
        expired
    }

    /// Forgets every held connection and returns them, for the caller to
    /// close.
    pub fn drop_all(&mut self) -> Vec<ConnectionId> {
        std::mem::take(&mut self.conns).into_keys().collect()
    }

    /// Every held input, connection by connection in arrival order of the
    /// connections, each connection's inputs in the order they came.
    pub fn release(&mut self) -> Vec<Input> {
        let mut conns: Vec<Held> = std::mem::take(&mut self.conns).into_values().collect();
        conns.sort_by_key(|h| h.since_ms);
        conns.into_iter().flat_map(|h| h.inputs).collect()
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::jute::{op, ConnectRequest, Request, RequestHeader};

    fn accepted(c: u64) -> Input {
        Input::Accepted {
            conn: ConnectionId(c),
            remote: "127.0.0.1:5000".parse().expect("addr"),
            identities: Vec::new(),
        }
    }

    fn connect(c: u64) -> Input {
        Input::Connect {
            conn: ConnectionId(c),
            request: ConnectRequest::default(),
        }
    }

    fn ping(c: u64, xid: i32) -> Input {
        Input::Request {
            conn: ConnectionId(c),
            header: RequestHeader { xid, op: op::PING },
            body: Ok(Request::Ping),
        }
    }

    /// (connection, kind, xid) of each input, to compare orders.
    fn shape(inputs: &[Input]) -> Vec<(u64, &'static str, i32)> {
        inputs
            .iter()
            .map(|i| match i {
                Input::Accepted { conn, .. } => (conn.0, "accepted", 0),
                Input::Connect { conn, .. } => (conn.0, "connect", 0),
                Input::Request { conn, header, .. } => (conn.0, "request", header.xid),
                _ => (0, "other", 0),
            })
            .collect()
    }

    #[test]
    fn held_inputs_come_back_in_order_connection_by_connection() {
        let mut h = HeldClients::default();
        assert_eq!(h.hold(10, accepted(7)), Hold::Held);
        assert_eq!(h.hold(11, accepted(3)), Hold::Held);
        assert_eq!(h.hold(12, connect(3)), Hold::Held);
        assert_eq!(h.hold(13, connect(7)), Hold::Held);
        assert_eq!(h.hold(14, ping(7, 1)), Hold::Held);
        assert_eq!(h.hold(15, ping(3, 1)), Hold::Held);
        assert_eq!(h.hold(16, ping(7, 2)), Hold::Held);
        assert_eq!(h.len(), 2);
        assert_eq!(
            shape(&h.release()),
            [
                (7, "accepted", 0),
                (7, "connect", 0),
                (7, "request", 1),
                (7, "request", 2),
                (3, "accepted", 0),
                (3, "connect", 0),
                (3, "request", 1),
            ]
        );
        assert!(h.is_empty());
    }

    #[test]
    fn a_disconnect_forgets_the_connection() {
        let mut h = HeldClients::default();
        h.hold(0, accepted(1));
        h.hold(0, connect(1));
        assert!(h.contains(ConnectionId(1)));
        assert_eq!(
            h.hold(
                1,
                Input::Disconnected {
                    conn: ConnectionId(1)
                }
            ),
            Hold::Ignored
        );
        assert!(!h.contains(ConnectionId(1)));
        assert!(h.release().is_empty());
    }

    #[test]
    fn frames_of_connections_that_are_not_held_are_ignored() {
        let mut h = HeldClients::default();
        assert_eq!(h.hold(0, connect(9)), Hold::Ignored);
        assert_eq!(h.hold(0, ping(9, 1)), Hold::Ignored);
        assert_eq!(h.hold(0, Input::Tick), Hold::Ignored);
        assert!(h.is_empty());
    }

    /// A leader with `leaderServes=no` closes what it held.
    #[test]
    fn drop_all_forgets_every_connection() {
        let mut h = HeldClients::default();
        h.hold(0, accepted(1));
        h.hold(1, accepted(2));
        h.hold(2, connect(2));
        let mut dropped = h.drop_all();
        dropped.sort_by_key(|c| c.0);
        assert_eq!(dropped, [ConnectionId(1), ConnectionId(2)]);
        assert!(h.is_empty());
        assert!(h.release().is_empty());
    }

    #[test]
    fn connections_held_too_long_expire() {
        let mut h = HeldClients::default();
        h.hold(0, accepted(1));
        h.hold(500, accepted(2));
        let hold = HOLD_MS as i64;
        assert!(h.expire(hold - 1).is_empty());
        assert_eq!(h.expire(hold), [ConnectionId(1)]);
        assert_eq!(h.expire(500 + hold), [ConnectionId(2)]);
        assert!(h.is_empty());
    }

    #[test]
    fn a_hold_of_zero_closes_each_connection_as_it_arrives() {
        let mut h = HeldClients::new(0);
        assert_eq!(h.hold(0, accepted(1)), Hold::Close(ConnectionId(1)));
        assert!(h.is_empty());
        assert_eq!(h.hold(0, connect(1)), Hold::Ignored);
    }

    #[test]
    fn a_connection_that_sends_too_much_while_held_is_closed() {
        let mut h = HeldClients::default();
        h.hold(0, accepted(1));
        for xid in 1..MAX_HELD_FRAMES as i32 {
            assert_eq!(h.hold(0, ping(1, xid)), Hold::Held);
        }
        assert_eq!(h.hold(0, ping(1, 999)), Hold::Close(ConnectionId(1)));
        assert!(!h.contains(ConnectionId(1)));
    }
}
