//! When a client connection's requests stop being read.
//!
//! Three rules, checked by a connection's reader before it hands the core
//! each request it decoded (requests already read from the socket wait in
//! the reader's buffer):
//!
//! - **ZooKeeper's `globalOutstandingLimit`** (default 1000). While the
//!   server holds more requests than that which it has read and not yet
//!   answered, a connection with a request of its own among them is not
//!   read; it is read again once one of its requests is answered and the
//!   server is back under the limit, or it has none left
//!   (`ServerCnxn.incrOutstandingAndCheckThrottle`/`decrOutstanding…`,
//!   `ZooKeeperServer.shouldThrottle`). As there, only requests with a
//!   positive xid count (not pings, auth or set-watches packets), a request
//!   counts as answered once its reply is queued, and a follower or leader
//!   of an ensemble of more than two voters divides the limit by the
//!   voters less one (`FollowerZooKeeperServer`/`LeaderZooKeeperServer.
//!   getGlobalOutstandingLimit`). This bounds what a flood of requests
//!   costs while the pipeline is behind.
//! - **zab's own: replies waiting to be written.** A connection whose
//!   queued, unwritten replies pass [`REPLY_BACKLOG_BYTES`] is not read
//!   until the client has read enough of them. ZooKeeper keeps reading and
//!   queues replies without bound, so a client that sends requests and
//!   never reads the replies grows the server's memory until it fails.
//! - **zab's own: requests per connection.** A connection hands the core at
//!   most [`MAX_UNANSWERED`] requests not yet answered. Without it, one
//!   read of a pipelining client could bring thousands of requests whose
//!   replies all land in the backlog before the rule above can see them;
//!   with it, a connection's unwritten replies stay under the backlog plus
//!   that many replies. Clients pipeline far fewer (the Java client's
//!   recipes a few, `cargo xtask bench` 8), and a deeper pipeline is still
//!   served, that many at a time.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::config::{Config, PeerType};

/// Unwritten reply bytes past which a connection is not read. Several of
/// the largest replies (`jute.maxbuffer`'s default is 1 MiB) fit under it,
/// so a client that reads its replies as they come never waits on it.
pub const REPLY_BACKLOG_BYTES: i64 = 4 << 20;

/// Requests a connection hands the core before one of them is answered.
pub const MAX_UNANSWERED: i64 = 64;

/// What every client connection of a server shares: its requests read and
/// not yet answered, and the limit on them.
#[derive(Debug)]
pub struct ServerFlow {
    in_process: AtomicI64,
    /// Set again when the server starts serving in another role (see
    /// [`ServerFlow::limit_for`]).
    limit: AtomicI64,
}

impl ServerFlow {
    pub fn new(limit: i64) -> Arc<ServerFlow> {
        Arc::new(ServerFlow {
            in_process: AtomicI64::new(0),
            limit: AtomicI64::new(limit),
        })
    }

    /// `globalOutstandingLimit` as this server applies it while it serves
    /// as `role` (see the module documentation). ZooKeeper's leader and
    /// follower servers divide it; its observer and read-only servers keep
    /// `ZooKeeperServer.getGlobalOutstandingLimit` as it is, so a voter
    /// cut off from its quorum gets the whole limit back while read-only.
    pub fn limit_for(cfg: &Config, role: ServingRole) -> i64 {
        let limit = i64::from(cfg.global_outstanding_limit);
        let voters = cfg.voters().count() as i64;
        let divides = match role {
            ServingRole::Configured => {
                cfg.is_distributed() && cfg.peer_type == PeerType::Participant
            }
            ServingRole::Voter => true,
            ServingRole::ObserverOrAlone => false,
        };
        if divides && voters > 2 {
            limit / (voters - 1)
        } else {
            limit
        }
    }

    /// The limit from now on: the server serves in a new role.
    pub fn set_limit(&self, limit: i64) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    /// Requests read and not yet answered, server-wide: ZooKeeper's
    /// `requestsInProcess`, which `mntr` reports as
    /// `zk_outstanding_requests` and `srvr` as `Outstanding`.
    pub fn in_process(&self) -> i64 {
        self.in_process.load(Ordering::SeqCst)
    }

    /// `ZooKeeperServer.shouldThrottle`: over the limit, a connection with
    /// requests of its own outstanding waits. `batched` are requests the
    /// reader decoded and has not counted yet.
    fn should_throttle(&self, own: i64, batched: i64) -> bool {
        self.limit.load(Ordering::Relaxed) < self.in_process() + batched && own + batched > 0
    }
}

/// Which of ZooKeeper's servers the limit is taken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServingRole {
    /// The role zoo.cfg gives this server (before it serves at all).
    Configured,
    /// A leader or follower (`LeaderZooKeeperServer`,
    /// `FollowerZooKeeperServer`).
    Voter,
    /// An observer, a read-only server, or a standalone one.
    ObserverOrAlone,
}

/// One connection's side of the flow: its outstanding requests, its
/// unwritten reply bytes, and the wake-up of its paused reader.
#[derive(Debug)]
pub struct ConnFlow {
    server: Arc<ServerFlow>,
    outstanding: AtomicI64,
    /// Reply bytes queued, ever. Only the core adds to it, once per reply,
    /// so with a plain store: a locked instruction per reply is a
    /// measurable share of a read's CPU. A reader that sees it late only
    /// pauses a little later; a rise never has to wake one.
    queued: AtomicI64,
    /// Reply bytes written, ever (by the writer, once per batch).
    written: AtomicI64,
    /// The reader is waiting, or about to: answers and writes wake it.
    paused: AtomicBool,
    resume: Notify,
    /// The core asked to close: the writer stops waiting on a client that
    /// does not read once [`CLOSE_LINGER`] has passed.
    closing: AtomicBool,
    close: Notify,
}

/// How long a close the server starts waits for what was queued before it
/// to reach the client (a closeSession's reply, say). ZooKeeper closes the
/// socket at once (`NIOServerCnxn.close`); a client that has stopped
/// reading (stopped, frozen, its window full) must not keep its socket,
/// its `maxClientCnxns` slot and its queued frames for as long as it stays
/// so.
pub const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

impl ConnFlow {
    pub fn new(server: &Arc<ServerFlow>) -> Arc<ConnFlow> {
        Arc::new(ConnFlow {
            server: Arc::clone(server),
            outstanding: AtomicI64::new(0),
            queued: AtomicI64::new(0),
            written: AtomicI64::new(0),
            paused: AtomicBool::new(false),
            resume: Notify::new(),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        })
    }

    /// Resolves [`CLOSE_LINGER`] after the core asked to close.
    pub async fn close_lingered(&self) {
        loop {
            let asked = self.close.notified();
            if self.closing.load(Ordering::SeqCst) {
                break;
            }
            asked.await;
        }
        tokio::time::sleep(CLOSE_LINGER).await;
    }

    /// The reader handed the core `n` requests with positive xids.
    pub fn requests_read(&self, n: i64) {
        if n > 0 {
            self.outstanding.fetch_add(n, Ordering::SeqCst);
            self.server.in_process.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// A reply frame (length prefix included) was queued for writing.
    fn reply_queued(&self, frame: &[u8]) {
        add_own(&self.queued, frame.len() as i64);
        if reply_xid(frame).is_some_and(|xid| xid > 0) {
            // After the connection closed its requests were given back;
            // a late answer must not give them back twice.
            let answered = self
                .outstanding
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n > 0).then(|| n - 1)
                })
                .is_ok();
            if answered {
                self.server.in_process.fetch_sub(1, Ordering::SeqCst);
                self.wake_if_paused();
            }
        }
    }

    /// The writer put `bytes` of queued replies on the socket.
    pub fn written(&self, bytes: usize) {
        // A read-modify-write: it orders the count before the load of
        // `paused` that follows, which the paused-reader handshake needs.
        self.written.fetch_add(bytes as i64, Ordering::SeqCst);
        self.wake_if_paused();
    }

    /// Reply bytes written to the client, ever.
    pub fn written_total(&self) -> i64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Whether the reader must stop before handing the core another
    /// request, with `batched` decoded and not yet counted.
    pub fn holds_back(&self, batched: i64) -> bool {
        let own = self.outstanding.load(Ordering::SeqCst);
        own + batched >= MAX_UNANSWERED
            || self.unwritten() > REPLY_BACKLOG_BYTES
            || self.server.should_throttle(own, batched)
    }

    /// Whether the reader must wait before it goes on.
    pub fn must_pause(&self) -> bool {
        self.holds_back(0)
    }

    /// Waits until no rule holds the reader back. The flag is raised
    /// before the rules are checked, and an answer or a write lowers the
    /// counters before it reads the flag, so one of the two sees the other.
    pub async fn wait_until_readable(&self) {
        loop {
            self.paused.store(true, Ordering::SeqCst);
            if !self.must_pause() {
                self.paused.store(false, Ordering::SeqCst);
                return;
            }
            // A permit stored by a wake-up since the flag went up ends this
            // at once, and the rules are checked again.
            self.resume.notified().await;
        }
    }

    /// The connection is gone: its unanswered requests leave the server's
    /// count.
    pub fn closed(&self) {
        let n = self.outstanding.swap(0, Ordering::SeqCst);
        self.server.in_process.fetch_sub(n, Ordering::SeqCst);
    }

    fn unwritten(&self) -> i64 {
        self.queued.load(Ordering::SeqCst) - self.written.load(Ordering::SeqCst)
    }

    fn wake_if_paused(&self) {
        if self.paused.load(Ordering::SeqCst) {
            self.resume.notify_one();
        }
    }
}

/// Adds to a counter that only the calling task ever changes.
fn add_own(counter: &AtomicI64, n: i64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
}

/// The xid of a framed reply: the first field of its header, after the
/// 4-byte length.
fn reply_xid(frame: &[u8]) -> Option<i32> {
    let xid: [u8; 4] = frame.get(4..8)?.try_into().ok()?;
    Some(i32::from_be_bytes(xid))
}

/// What the core sends a client connection's writer.
pub(crate) enum Outgoing {
    /// A complete frame, length prefix included.
    Frame(bytes::Bytes),
    /// Close after everything queued before this.
    Close,
}

/// The core's handle on a connection's writer: queues frames and counts
/// them into the connection's flow. Only the core holds it (not `Clone`):
/// the queued-bytes count relies on one writer.
pub(crate) struct ReplySender {
    tx: mpsc::UnboundedSender<Outgoing>,
    flow: Arc<ConnFlow>,
}

impl ReplySender {
    pub fn new(tx: mpsc::UnboundedSender<Outgoing>, flow: Arc<ConnFlow>) -> ReplySender {
        ReplySender { tx, flow }
    }

    /// Queues `msg`; once the writer is gone there is no one to send to,
    /// and the connection's reader ends too.
    pub fn send(&self, msg: Outgoing) {
        match &msg {
            Outgoing::Frame(frame) => self.flow.reply_queued(frame),
            Outgoing::Close => {
                self.flow.closing.store(true, Ordering::SeqCst);
                self.flow.close.notify_waiters();
            }
        }
        let _ = self.tx.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(xid: i32, body: usize) -> Vec<u8> {
        let mut f = ((12 + body) as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&xid.to_be_bytes());
        f.extend_from_slice(&7i64.to_be_bytes());
        f.resize(4 + 12 + body, 0);
        f
    }

    #[test]
    fn over_the_limit_only_connections_with_requests_of_their_own_wait() {
        let server = ServerFlow::new(2);
        let (a, b) = (ConnFlow::new(&server), ConnFlow::new(&server));
        a.requests_read(2);
        assert!(!a.must_pause(), "2 in process is not over a limit of 2");
        a.requests_read(1);
        assert_eq!(server.in_process(), 3);
        assert!(a.must_pause());
        assert!(!b.must_pause(), "b has nothing outstanding");
        b.requests_read(1);
        assert!(b.must_pause());
        // An answer to a: 3 in process, still over; a waits on.
        a.reply_queued(&reply(1, 0));
        assert!(a.must_pause());
        // b's answer brings the server back to the limit.
        b.reply_queued(&reply(1, 0));
        assert_eq!(server.in_process(), 2);
        assert!(!a.must_pause() && !b.must_pause());
    }

    #[test]
    fn only_replies_with_positive_xids_answer_requests() {
        let server = ServerFlow::new(0);
        let c = ConnFlow::new(&server);
        c.requests_read(1);
        for xid in [0, -1, -2, -4, -8] {
            c.reply_queued(&reply(xid, 0));
        }
        assert_eq!(server.in_process(), 1);
        assert!(c.must_pause());
        c.reply_queued(&reply(5, 0));
        assert_eq!(server.in_process(), 0);
        assert!(!c.must_pause());
        // A frame too short for a header answers nothing.
        c.requests_read(1);
        c.reply_queued(&[0, 0, 0, 1, 9]);
        assert_eq!(server.in_process(), 1);
    }

    #[test]
    fn a_connection_hands_the_core_at_most_max_unanswered_requests() {
        let server = ServerFlow::new(1000);
        let c = ConnFlow::new(&server);
        assert!(!c.holds_back(MAX_UNANSWERED - 1));
        assert!(c.holds_back(MAX_UNANSWERED));
        c.requests_read(MAX_UNANSWERED);
        assert!(c.must_pause());
        c.reply_queued(&reply(1, 0));
        assert!(!c.must_pause());
        assert!(c.holds_back(1));
        // The server-wide limit counts what is decoded but not yet handed.
        let tight = ServerFlow::new(3);
        let d = ConnFlow::new(&tight);
        assert!(!d.holds_back(3));
        assert!(d.holds_back(4));
    }

    #[test]
    fn unwritten_replies_past_the_backlog_pause_the_reader_until_written() {
        let server = ServerFlow::new(1000);
        let c = ConnFlow::new(&server);
        let big = reply(1, REPLY_BACKLOG_BYTES as usize);
        c.requests_read(1);
        c.reply_queued(&big);
        assert!(c.must_pause());
        c.written(big.len() / 2);
        assert!(!c.must_pause());
    }

    #[test]
    fn a_closed_connection_gives_its_requests_back_once() {
        let server = ServerFlow::new(1000);
        let c = ConnFlow::new(&server);
        c.requests_read(3);
        c.reply_queued(&reply(1, 0));
        c.closed();
        assert_eq!(server.in_process(), 0);
        // Answers the core queued before it saw the close.
        c.reply_queued(&reply(2, 0));
        c.reply_queued(&reply(3, 0));
        assert_eq!(server.in_process(), 0);
    }

    #[tokio::test]
    async fn a_paused_reader_wakes_when_its_request_is_answered() {
        let server = ServerFlow::new(0);
        let c = ConnFlow::new(&server);
        c.requests_read(1);
        let waiter = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.wait_until_readable().await })
        };
        // The reader is parked (or about to be): answering wakes it.
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        c.reply_queued(&reply(1, 0));
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the reader was not woken")
            .unwrap();
    }

    #[test]
    fn a_voter_of_a_larger_ensemble_divides_the_limit() {
        let limit_as = |role: ServingRole, extra: &str, id: Option<&str>| {
            let text = format!("dataDir=/d\nclientPort=2181\ninitLimit=5\nsyncLimit=2\n{extra}");
            ServerFlow::limit_for(&Config::parse(&text, id).unwrap(), role)
        };
        let limit = |extra: &str, id: Option<&str>| limit_as(ServingRole::Configured, extra, id);
        let server = |n: u32| format!("server.{n}=127.0.0.1:{}:{}\n", 2 * n, 2 * n + 1);
        let servers = |n: u32| (1..=n).map(server).collect::<String>();
        assert_eq!(limit("", None), 1000);
        assert_eq!(limit(&servers(3), Some("1")), 500);
        let five = format!("globalOutstandingLimit=10\n{}", servers(5));
        assert_eq!(limit(&five, Some("1")), 2);
        // Two voters: no division (ZooKeeper divides only above two).
        assert_eq!(limit(&servers(2), Some("1")), 1000);
        // An observer keeps the whole limit.
        let observer = format!(
            "{}server.4=127.0.0.1:8:9:observer\npeerType=observer\n",
            servers(3)
        );
        assert_eq!(limit(&observer, Some("4")), 1000);
        // A voter serving read-only keeps the whole limit too; serving as
        // a leader or follower, the divided one.
        let voter = |role| limit_as(role, &servers(3), Some("1"));
        assert_eq!(voter(ServingRole::ObserverOrAlone), 1000);
        assert_eq!(voter(ServingRole::Voter), 500);
    }

    #[test]
    fn a_new_limit_applies_to_the_next_request() {
        let server = ServerFlow::new(1);
        let a = ConnFlow::new(&server);
        let b = ConnFlow::new(&server);
        a.requests_read(1);
        b.requests_read(1);
        assert!(b.holds_back(0), "over a limit of 1");
        server.set_limit(1000);
        assert!(!b.holds_back(0), "under a limit of 1000");
    }
}
