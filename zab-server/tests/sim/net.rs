//! The simulated world outside the nodes: a virtual clock with an event
//! queue, and an in-memory network.
//!
//! The network has two kinds of traffic, both FIFO per direction (as over
//! TCP) with seeded delays:
//!
//! * election notifications between every pair of servers. A link takes
//!   a seeded while to come up once both ends can reach each other (a
//!   dial, its back-off while the peer was not listening yet, the stream's
//!   handshake), so servers started together link to each other in any
//!   order; nothing is sent on a pair before its link is up. Like
//!   zab-election's transport, the last notification sent to a peer is
//!   kept and sent again whenever a link to it comes up (heal, restart);
//! * leader ⇄ learner streams. A crash or a partition breaks a stream:
//!   what is in flight is lost and each end is told, after a detection
//!   delay, that it is gone. A stream is never re-established: the learner
//!   goes back to LOOKING and connects anew, as `quorum.rs` does.
//!
//!   A partition may instead be a black hole (half of them, drawn by
//!   `World`): as over TCP with no reset, a stream across it stays open,
//!   what is sent on it waits, and nobody hears anything until the cut
//!   heals, when it all arrives in order. quorum.rs's links have no read
//!   timeout of their own, so only the cores' timeouts (a learner's
//!   silent leader, a leader's silent learner, its quorum check) end a
//!   role there.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use zab_election::Notification;
use zab_wire::proto::QuorumPacket;
use zab_wire::ServerId;

use super::checker::Checker;
use super::history::History;
use super::node::Stats;
use super::rng::Rng;

pub type StreamId = u64;

#[derive(Debug)]
pub enum Event {
    /// The node's clock (quorum.rs wakes every `CLOCK_MS`).
    Clock { sid: ServerId, incarnation: u64 },
    Notify {
        from: ServerId,
        to: ServerId,
        link: u64,
        n: Notification,
    },
    Packet {
        stream: StreamId,
        to_leader: bool,
        packet: QuorumPacket,
    },
    /// One end of a stream learns that it is gone.
    StreamDown { stream: StreamId, at_leader: bool },
    /// An fsync completed.
    Synced {
        sid: ServerId,
        incarnation: u64,
        gen: u64,
        zxid: zab_wire::Zxid,
    },
    /// The election link between `a` and `b` comes up, unless the pair was
    /// cut since it was dialled (`link` is the pair's link epoch then).
    LinkUp { a: ServerId, b: ServerId, link: u64 },
    /// A learner tries to connect to its leader's quorum port.
    Connect { sid: ServerId, gen: u64 },
    /// The client driver submits writes.
    ClientWrite,
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` pops the earliest, ties in scheduling order.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Clone, Debug)]
pub struct Stream {
    pub leader: ServerId,
    pub leader_gen: u64,
    pub follower: ServerId,
    pub follower_gen: u64,
    pub alive: bool,
    /// Sent while its pair is black-holed, in order (`to_leader`, packet).
    pending: Vec<(bool, QuorumPacket)>,
    /// Closed while black-holed: its ends hear of it when the cut heals.
    down_on_heal: bool,
}

/// FIFO channels: (kind, a, b) → when the last message on it is due.
type Channel = (u8, u64, u64);

pub struct Io {
    pub now: u64,
    pub rng: Rng,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    up: BTreeSet<ServerId>,
    group: BTreeMap<ServerId, u32>,
    /// Bumped whenever a pair is cut (crash or partition): notifications in
    /// flight on the old link are lost.
    link_epoch: BTreeMap<(ServerId, ServerId), u64>,
    /// Pairs whose election link is up (zab-election's `is_linked`).
    established: BTreeSet<(ServerId, ServerId)>,
    /// `(a, b)`: `a`'s election transport has had a link to `b` since `a`
    /// last started (zab-election's `ever_active`), for
    /// [`Io::may_still_vote`].
    linked: BTreeSet<(ServerId, ServerId)>,
    last_note: BTreeMap<(ServerId, ServerId), Notification>,
    fifo: BTreeMap<Channel, u64>,
    pub streams: BTreeMap<StreamId, Stream>,
    next_stream: StreamId,
    /// Message delay bounds (ms).
    pub delay: (u64, u64),
    /// How long an election link takes to come up (ms). On loopback a dial
    /// refused because the peer is not listening yet is retried after 50,
    /// then 100 ms, and a lower sid with a vote to send asks the higher one
    /// to dial at once, so links come up well inside the election's 200 ms
    /// finalize wait.
    pub link_setup: (u64, u64),
    /// How long an end may take to notice that a cut stream is gone.
    pub detect_max_ms: u64,
    /// The next partition black-holes its streams instead of breaking them.
    pub blackhole: bool,
    /// Pairs cut by a black hole, not yet healed.
    blackholed: BTreeSet<(ServerId, ServerId)>,
    pub trace: VecDeque<String>,
    trace_len: usize,
    pub violations: Vec<String>,
    pub check: Checker,
    pub stats: Stats,
    /// Snapshot digest → the history it holds, for the learner that
    /// installs it (simulation metadata).
    snapshots: BTreeMap<u64, History>,
}

/// Events kept for a failure report (`SIM_TRACE=<n>` keeps more).
fn trace_len() -> usize {
    std::env::var("SIM_TRACE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(60)
}

fn pair(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Io {
    pub fn new(seed: u64) -> Io {
        Io {
            now: 0,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            up: BTreeSet::new(),
            group: BTreeMap::new(),
            link_epoch: BTreeMap::new(),
            established: BTreeSet::new(),
            linked: BTreeSet::new(),
            last_note: BTreeMap::new(),
            fifo: BTreeMap::new(),
            streams: BTreeMap::new(),
            next_stream: 1,
            delay: (1, 5),
            link_setup: (1, 150),
            detect_max_ms: 500,
            blackhole: false,
            blackholed: BTreeSet::new(),
            trace: VecDeque::new(),
            trace_len: trace_len(),
            violations: Vec::new(),
            check: Checker::default(),
            stats: Stats::default(),
            snapshots: BTreeMap::new(),
        }
    }

    pub fn log(&mut self, line: String) {
        if self.trace.len() >= self.trace_len {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>7} ms  {line}", self.now));
    }

    pub fn violation(&mut self, what: String) {
        self.log(format!("VIOLATION: {what}"));
        self.violations.push(what);
    }

    pub fn snapshot_sent(&mut self, digest: u64, history: History) {
        self.snapshots.insert(digest, history);
    }

    pub fn snapshot_history(&self, digest: u64) -> Option<History> {
        self.snapshots.get(&digest).cloned()
    }

    pub fn schedule(&mut self, after_ms: u64, ev: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: self.now + after_ms,
            seq: self.seq,
            ev,
        });
    }

    pub fn next_due(&self) -> Option<u64> {
        self.queue.peek().map(|s| s.at)
    }

    pub fn pop(&mut self) -> Option<Event> {
        let s = self.queue.pop()?;
        self.now = self.now.max(s.at);
        Some(s.ev)
    }

    /// The packets for the learner end of `stream` that are due now and
    /// next in the queue, taken off it in order: with the packet just
    /// popped, one batch off the wire, as the real link hands a learner
    /// (`Learner::on_packets`).
    pub fn pop_due_learner_packets(&mut self, stream: StreamId) -> Vec<QuorumPacket> {
        let mut out = Vec::new();
        while let Some(next) = self.queue.peek() {
            let same = next.at <= self.now
                && matches!(&next.ev, Event::Packet { stream: s, to_leader: false, .. } if *s == stream);
            if !same {
                break;
            }
            if let Some(Scheduled {
                ev: Event::Packet { packet, .. },
                ..
            }) = self.queue.pop()
            {
                out.push(packet);
            }
        }
        out
    }

    /// A delay on `chan`, never overtaking what was sent on it before.
    fn fifo_delay(&mut self, chan: Channel) -> u64 {
        let d = self.rng.range(self.delay.0, self.delay.1);
        let due = (self.now + d).max(self.fifo.get(&chan).copied().unwrap_or(0));
        self.fifo.insert(chan, due);
        due - self.now
    }

    // ------------------------------------------------------------ topology

    /// `ElectionTransport::may_still_vote` as seen by `me`: the link to
    /// `peer` is up, or `me` has not been linked to it since `me` started.
    pub fn may_still_vote(&self, me: ServerId, peer: ServerId) -> bool {
        self.is_linked(me, peer) || !self.linked.contains(&(me, peer))
    }

    /// Whether the election link between `a` and `b` is up.
    fn is_linked(&self, a: ServerId, b: ServerId) -> bool {
        a == b || self.established.contains(&pair(a, b))
    }

    fn mark_linked(&mut self, a: ServerId, b: ServerId) {
        self.linked.insert((a, b));
        self.linked.insert((b, a));
    }

    pub fn connected(&self, a: ServerId, b: ServerId) -> bool {
        a == b
            || (self.up.contains(&a)
                && self.up.contains(&b)
                && self.group.get(&a).copied().unwrap_or(0)
                    == self.group.get(&b).copied().unwrap_or(0))
    }

    fn cut(&mut self, a: ServerId, b: ServerId, detect_max: u64) {
        self.cut_election_link(a, b);
        for id in self.streams_between(a, b) {
            self.kill_stream(id, detect_max);
        }
    }

    /// Notifications in flight between `a` and `b` are lost; the link comes
    /// back through [`Io::dial`].
    fn cut_election_link(&mut self, a: ServerId, b: ServerId) {
        *self.link_epoch.entry(pair(a, b)).or_insert(0) += 1;
        self.established.remove(&pair(a, b));
    }

    fn streams_between(&self, a: ServerId, b: ServerId) -> Vec<StreamId> {
        self.streams
            .iter()
            .filter(|(_, s)| pair(s.leader, s.follower) == pair(a, b))
            .map(|(id, _)| *id)
            .collect()
    }

    fn is_blackholed(&self, s: &Stream) -> bool {
        self.blackholed.contains(&pair(s.leader, s.follower))
    }

    /// A black hole opens between `a` and `b`: the packets already in
    /// flight on their streams wait with everything sent after them.
    fn black_hole(&mut self, a: ServerId, b: ServerId) {
        self.cut_election_link(a, b);
        self.blackholed.insert(pair(a, b));
        let ids: BTreeSet<StreamId> = self.streams_between(a, b).into_iter().collect();
        let mut all = std::mem::take(&mut self.queue).into_vec();
        all.sort_by_key(|s| (s.at, s.seq));
        for sched in all {
            match sched.ev {
                Event::Packet {
                    stream,
                    to_leader,
                    packet,
                } if ids.contains(&stream) => {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        s.pending.push((to_leader, packet));
                    }
                }
                ev => self.queue.push(Scheduled { ev, ..sched }),
            }
        }
    }

    /// The black hole between `a` and `b` heals: what waited is sent, in
    /// order, and streams closed meanwhile are heard of.
    fn release(&mut self, a: ServerId, b: ServerId) {
        if !self.blackholed.remove(&pair(a, b)) {
            return;
        }
        self.log(format!("black hole {a}-{b} healed"));
        for id in self.streams_between(a, b) {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            let pending = std::mem::take(&mut s.pending);
            if s.alive {
                for (to_leader, packet) in pending {
                    self.stream_send(id, to_leader, packet);
                }
            } else if std::mem::take(&mut s.down_on_heal) {
                for at_leader in [true, false] {
                    let d = self.rng.range(1, 5);
                    self.schedule(
                        d,
                        Event::StreamDown {
                            stream: id,
                            at_leader,
                        },
                    );
                }
            }
        }
    }

    pub fn node_up(&mut self, sid: ServerId) {
        self.up.insert(sid);
        self.relink(sid);
    }

    pub fn node_down(&mut self, sid: ServerId) {
        let others: Vec<ServerId> = self.up.iter().copied().filter(|&o| o != sid).collect();
        for o in others {
            // A crashed process's sockets are reset: the other side notices
            // quickly.
            self.cut(sid, o, 5);
        }
        self.up.remove(&sid);
        self.last_note.retain(|(from, _), _| *from != sid);
        // A restarted process has a new transport that has linked to nobody.
        self.linked.retain(|&(me, _)| me != sid);
    }

    /// `groups[i]` is the partition of server `sids[i]`; servers talk only
    /// within their partition.
    pub fn partition(&mut self, groups: &BTreeMap<ServerId, u32>) {
        let sids: Vec<ServerId> = groups.keys().copied().collect();
        let before: Vec<(ServerId, ServerId, bool)> = pairs(&sids)
            .map(|(a, b)| (a, b, self.connected(a, b)))
            .collect();
        self.group = groups.clone();
        for (a, b, was) in before {
            let now = self.connected(a, b);
            if was && !now {
                if self.blackhole {
                    self.black_hole(a, b);
                } else {
                    let detect = self.detect_max_ms;
                    self.cut(a, b, detect);
                }
            } else if !was && now {
                self.release(a, b);
                self.dial(a, b);
            }
        }
    }

    fn relink(&mut self, sid: ServerId) {
        let others: Vec<ServerId> = self.up.iter().copied().filter(|&o| o != sid).collect();
        for o in others {
            if self.connected(sid, o) {
                self.release(sid, o);
                self.dial(sid, o);
            }
        }
    }

    /// `a` and `b` can reach each other again: their link comes up after a
    /// set-up delay.
    fn dial(&mut self, a: ServerId, b: ServerId) {
        let link = self.link_epoch.get(&pair(a, b)).copied().unwrap_or(0);
        let d = self.rng.range(self.link_setup.0, self.link_setup.1);
        self.schedule(d, Event::LinkUp { a, b, link });
    }

    /// A link dialled on link epoch `link` comes up, if the pair has not
    /// been cut since; each end sends its last notification for the other
    /// again, as the transport does on every new link.
    pub fn link_up(&mut self, a: ServerId, b: ServerId, link: u64) {
        let current = self.link_epoch.get(&pair(a, b)).copied().unwrap_or(0);
        if current != link || !self.connected(a, b) || self.is_linked(a, b) {
            return;
        }
        self.log(format!("election link {a}-{b} up"));
        self.established.insert(pair(a, b));
        self.mark_linked(a, b);
        self.resend(a, b);
        self.resend(b, a);
    }

    // ------------------------------------------------------------ election

    pub fn notify(&mut self, from: ServerId, to: ServerId, n: Notification) {
        self.last_note.insert((from, to), n);
        self.send_note(from, to, n);
    }

    fn resend(&mut self, from: ServerId, to: ServerId) {
        if let Some(n) = self.last_note.get(&(from, to)).copied() {
            self.send_note(from, to, n);
        }
    }

    fn send_note(&mut self, from: ServerId, to: ServerId, n: Notification) {
        if !self.is_linked(from, to) {
            return;
        }
        let link = self.link_epoch.get(&pair(from, to)).copied().unwrap_or(0);
        let d = self.fifo_delay((0, from.0, to.0));
        self.schedule(d, Event::Notify { from, to, link, n });
    }

    /// Is a notification sent on link epoch `link` still deliverable?
    pub fn note_alive(&self, from: ServerId, to: ServerId, link: u64) -> bool {
        self.is_linked(from, to)
            && self.link_epoch.get(&pair(from, to)).copied().unwrap_or(0) == link
    }

    // ------------------------------------------------------------ streams

    pub fn open_stream(
        &mut self,
        leader: ServerId,
        leader_gen: u64,
        follower: ServerId,
        follower_gen: u64,
    ) -> StreamId {
        let id = self.next_stream;
        self.next_stream += 1;
        self.streams.insert(
            id,
            Stream {
                leader,
                leader_gen,
                follower,
                follower_gen,
                alive: true,
                pending: Vec::new(),
                down_on_heal: false,
            },
        );
        id
    }

    pub fn stream_send(&mut self, id: StreamId, to_leader: bool, packet: QuorumPacket) {
        let blackholed = match self.streams.get(&id) {
            Some(s) if s.alive => self.is_blackholed(s),
            _ => return,
        };
        if blackholed {
            if let Some(s) = self.streams.get_mut(&id) {
                s.pending.push((to_leader, packet));
            }
            return;
        }
        let d = self.fifo_delay((1, id, to_leader as u64));
        self.schedule(
            d,
            Event::Packet {
                stream: id,
                to_leader,
                packet,
            },
        );
    }

    /// Breaks a stream: packets in flight are dropped (deliveries check
    /// `alive`) and each end hears of it within `detect_max` ms.
    pub fn kill_stream(&mut self, id: StreamId, detect_max: u64) {
        let blackholed = match self.streams.get(&id) {
            Some(s) if s.alive => self.is_blackholed(s),
            _ => return,
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.alive = false;
        if blackholed {
            // Neither the reset nor the FIN crosses the black hole.
            s.pending.clear();
            s.down_on_heal = true;
            return;
        }
        for at_leader in [true, false] {
            let d = self.rng.range(1, detect_max.max(1));
            self.schedule(
                d,
                Event::StreamDown {
                    stream: id,
                    at_leader,
                },
            );
        }
    }

    /// Every stream `sid` is an end of (it left its role: its sockets close).
    pub fn close_streams_of(&mut self, sid: ServerId) {
        let ids: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.alive && (s.leader == sid || s.follower == sid))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.kill_stream(id, 5);
        }
    }
}

fn pairs(sids: &[ServerId]) -> impl Iterator<Item = (ServerId, ServerId)> + '_ {
    sids.iter()
        .enumerate()
        .flat_map(move |(i, &a)| sids[i + 1..].iter().map(move |&b| (a, b)))
}
