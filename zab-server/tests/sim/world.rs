//! The world: the nodes, the network and the clock, the client driver,
//! fault injection, and the checks run after every event.

use std::collections::BTreeMap;

use zab_wire::{QuorumVerifier, ServerId};

use super::net::{Event, Io};
use super::node::{Node, NodeConfig, Role, CLOCK_MS};
use super::rng::Rng;

pub struct World {
    pub io: Io,
    pub nodes: BTreeMap<ServerId, Node>,
    verifier: QuorumVerifier,
    next_key: u64,
    /// Writes per client-driver wake-up, and the wake-up interval bounds.
    pub write_burst: u64,
    pub write_every: (u64, u64),
    pub writes_paused: bool,
    /// Events handled (for the cost report).
    pub events: u64,
    /// Draws whether a partition is a black hole; a stream of its own, so
    /// that the other draws of a seed stay as they were.
    blackholes: Rng,
    /// Picks the learners that take a client's `sync`; its own stream too.
    syncs: Rng,
    next_sync: i32,
    /// Draws how much of a crashed node's un-synced tail survives.
    crashes: Rng,
}

impl World {
    /// `voters` voters with ids 1..=voters and `observers` observers after
    /// them, all started at once.
    pub fn new(seed: u64, voters: u64, observers: u64, cfg: NodeConfig) -> World {
        let sids: Vec<ServerId> = (1..=voters + observers).map(ServerId).collect();
        let verifier = QuorumVerifier::new(
            sids[..voters as usize].iter().copied(),
            sids[voters as usize..].iter().copied(),
        );
        let mut io = Io::new(seed);
        let mut nodes = BTreeMap::new();
        for &sid in &sids {
            nodes.insert(sid, Node::new(sid, verifier.clone(), cfg.clone()));
        }
        for node in nodes.values_mut() {
            node.start(&mut io);
        }
        io.schedule(1, Event::ClientWrite);
        World {
            io,
            nodes,
            verifier,
            next_key: 0,
            write_burst: 1,
            write_every: (5, 30),
            writes_paused: false,
            events: 0,
            blackholes: Rng::new(seed ^ 0xB1AC_4013),
            syncs: Rng::new(seed ^ 0x0005_A7C5),
            next_sync: 0,
            crashes: Rng::new(seed ^ 0x0C2A_54E5),
        }
    }

    pub fn sids(&self) -> Vec<ServerId> {
        self.nodes.keys().copied().collect()
    }

    pub fn voters(&self) -> Vec<ServerId> {
        self.verifier.voters().iter().copied().collect()
    }

    pub fn up_sids(&self) -> Vec<ServerId> {
        self.nodes
            .values()
            .filter(|n| n.up)
            .map(|n| n.sid)
            .collect()
    }

    /// The established leader of the highest epoch, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.nodes
            .values()
            .filter(|n| n.up && n.is_established_leader())
            .max_by_key(|n| n.leader_epoch())
            .map(|n| n.sid)
    }

    // ------------------------------------------------------------ running

    /// Runs the event queue for `ms` of virtual time, checking after every
    /// event.
    pub fn run_for(&mut self, ms: u64) -> Result<(), String> {
        let until = self.io.now + ms;
        while let Some(at) = self.io.next_due() {
            if at > until {
                break;
            }
            let Some(ev) = self.io.pop() else { break };
            self.events += 1;
            self.handle(ev);
            self.after_event()?;
        }
        self.io.now = self.io.now.max(until);
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        let io = &mut self.io;
        match ev {
            Event::Clock { sid, incarnation } => {
                let Some(n) = self.nodes.get_mut(&sid) else {
                    return;
                };
                if n.up && n.disk.incarnation == incarnation {
                    n.clock(io);
                    io.schedule(CLOCK_MS, Event::Clock { sid, incarnation });
                }
            }
            Event::Notify { from, to, link, n } => {
                if !io.note_alive(from, to, link) {
                    return;
                }
                if let Some(node) = self.nodes.get_mut(&to).filter(|x| x.up) {
                    node.on_notification(io, n);
                }
            }
            Event::Packet {
                stream,
                to_leader,
                packet,
            } => {
                let Some(s) = io.streams.get(&stream).filter(|s| s.alive).cloned() else {
                    return;
                };
                if to_leader {
                    if let Some(n) = self.nodes.get_mut(&s.leader) {
                        if n.up && n.gen == s.leader_gen {
                            n.packet_from_learner(io, stream, packet);
                        }
                    }
                } else if let Some(n) = self.nodes.get_mut(&s.follower) {
                    let mut packets = vec![packet];
                    packets.extend(io.pop_due_learner_packets(stream));
                    if n.up && n.gen == s.follower_gen {
                        n.packets_from_leader(io, stream, packets);
                    }
                }
            }
            Event::StreamDown { stream, at_leader } => {
                let Some(s) = io.streams.get(&stream).cloned() else {
                    return;
                };
                let (sid, gen) = if at_leader {
                    (s.leader, s.leader_gen)
                } else {
                    (s.follower, s.follower_gen)
                };
                let Some(n) = self.nodes.get_mut(&sid) else {
                    return;
                };
                if !n.up || n.gen != gen {
                    return;
                }
                if at_leader {
                    n.learner_gone(io, stream);
                } else {
                    n.leader_gone(io, stream);
                }
            }
            Event::Synced {
                sid,
                incarnation,
                gen,
                zxid,
            } => {
                let Some(n) = self.nodes.get_mut(&sid) else {
                    return;
                };
                if n.disk.incarnation != incarnation {
                    return;
                }
                n.disk.synced(zxid);
                if n.up {
                    n.synced(io, gen);
                }
            }
            Event::Connect { sid, gen } => self.connect(sid, gen),
            Event::LinkUp { a, b, link } => io.link_up(a, b, link),
            Event::ClientWrite => {
                let every = self.write_every;
                let wait = self.io.rng.range(every.0, every.1);
                self.io.schedule(wait, Event::ClientWrite);
                if self.writes_paused {
                    return;
                }
                self.maybe_sync();
                // Any established leader, stale ones included: an isolated
                // leader accepts writes until it notices, and they must
                // never commit.
                let leaders: Vec<ServerId> = self
                    .nodes
                    .values()
                    .filter(|n| n.up && n.is_established_leader())
                    .map(|n| n.sid)
                    .collect();
                let Some(sid) = self.io.rng.pick(&leaders) else {
                    return;
                };
                for _ in 0..self.write_burst {
                    self.next_key += 1;
                    let key = self.next_key;
                    if let Some(n) = self.nodes.get_mut(&sid) {
                        n.client_write(&mut self.io, key);
                    }
                }
            }
        }
    }

    /// Now and then, a client's `sync` on a serving learner.
    fn maybe_sync(&mut self) {
        if !self.syncs.chance(20) {
            return;
        }
        let learners: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| n.up && n.serving && matches!(n.role, Role::Learning(_)))
            .map(|n| n.sid)
            .collect();
        let Some(sid) = self.syncs.pick(&learners) else {
            return;
        };
        self.next_sync += 1;
        let cxid = self.next_sync;
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.client_sync(&mut self.io, cxid);
        }
    }

    /// One client write to `sid` now (if it is an established leader).
    pub fn write_to(&mut self, sid: ServerId) {
        self.next_key += 1;
        let key = self.next_key;
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.client_write(&mut self.io, key);
        }
    }

    /// A learner dials its leader's quorum port.
    fn connect(&mut self, sid: ServerId, gen: u64) {
        let Some(target) = self
            .nodes
            .get(&sid)
            .filter(|n| n.up)
            .and_then(|n| n.wants_connect(gen))
        else {
            return;
        };
        let (target, to_master) = target;
        let accepting = self.io.connected(sid, target)
            && self
                .nodes
                .get(&target)
                .is_some_and(|t| t.up && t.accepts_learners(to_master));
        if !accepting {
            if let Some(n) = self.nodes.get_mut(&sid) {
                n.connect_failed(&mut self.io);
            }
            return;
        }
        let leader_gen = self.nodes.get(&target).map_or(0, |t| t.gen);
        let stream = self.io.open_stream(target, leader_gen, sid, gen);
        if let Some(t) = self.nodes.get_mut(&target) {
            t.learner_connected(&mut self.io, stream);
        }
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.link_up(&mut self.io, stream);
        }
    }

    /// Invariant violations reported during the event, then: every txn
    /// just committed is durable on a quorum of voters ("a client is told a
    /// write succeeded only after a quorum holds it durably").
    fn after_event(&mut self) -> Result<(), String> {
        if let Some(v) = self.io.violations.first() {
            return Err(v.clone());
        }
        let verify = std::mem::take(&mut self.io.check.to_verify);
        for (leader, zxid, digest) in verify {
            let holders: Vec<ServerId> = self
                .nodes
                .values()
                .filter(|n| n.disk.holds_durably(zxid, digest))
                .map(|n| n.sid)
                .collect();
            if !self.verifier.contains_quorum(&holders) {
                return Err(format!(
                    "{leader} committed {zxid}, durable only on {holders:?}"
                ));
            }
        }
        Ok(())
    }

    /// The whole-state check run after every schedule step: every serving
    /// node holds a prefix of the committed history.
    pub fn full_check(&self) -> Result<(), String> {
        // A server whose durable data is of a newer epoch than its
        // currentEpoch could not start again (zab-store's `recover_epochs`,
        // ZooKeeper's `loadDataBase`), were it stopped now; that may only
        // last while NEWLEADER's sync becomes durable, as in ZooKeeper.
        for n in self.nodes.values().filter(|n| n.up) {
            let Some(current) = n.disk.recorded_current_epoch() else {
                continue;
            };
            let last = n.disk.durable_last();
            if last.epoch() > current && !n.persisting_new_leader() {
                return Err(format!(
                    "{} ({}) durably holds {last}, newer than its current epoch {current}: stopped now, it could not start again",
                    n.sid,
                    n.role_name()
                ));
            }
        }
        for n in self.nodes.values().filter(|n| n.up && n.serving) {
            if !n.history.is_prefix_of(&self.io.check.committed) {
                return Err(format!(
                    "{} ({}) serves a history that is not committed: {}",
                    n.sid,
                    n.role_name(),
                    n.history.divergence(&self.io.check.committed)
                ));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ faults

    /// Crashes `sid`: a third of the crashes lose the whole un-synced log
    /// tail (a power loss before any write-back), a third keep all of it
    /// (`kill -9`: the page cache outlives the process), a third keep a
    /// prefix of it.
    pub fn crash(&mut self, sid: ServerId) {
        if let Some(n) = self.nodes.get_mut(&sid).filter(|n| n.up) {
            let unsynced = n.disk.unsynced_len();
            let keep = match self.crashes.range(0, 2) {
                0 => 0,
                1 => unsynced,
                _ => self.crashes.range(0, unsynced as u64) as usize,
            };
            if keep > 0 {
                self.io.stats.unsynced_kept += keep as u64;
            }
            n.crash(&mut self.io, keep);
        }
    }

    /// `kill -9` of `sid`: the whole un-synced log tail stays on disk.
    pub fn kill(&mut self, sid: ServerId) {
        if let Some(n) = self.nodes.get_mut(&sid).filter(|n| n.up) {
            let keep = n.disk.unsynced_len();
            self.io.stats.unsynced_kept += keep as u64;
            n.crash(&mut self.io, keep);
        }
    }

    pub fn restart(&mut self, sid: ServerId) {
        if let Some(n) = self.nodes.get_mut(&sid).filter(|n| !n.up) {
            n.start(&mut self.io);
        }
    }

    /// Cuts the ensemble in two: `side` against everyone else.
    pub fn partition(&mut self, side: &[ServerId]) {
        let groups: BTreeMap<ServerId, u32> = self
            .sids()
            .into_iter()
            .map(|s| (s, u32::from(side.contains(&s))))
            .collect();
        self.io.blackhole = self.blackholes.chance(50);
        let kind = if self.io.blackhole {
            "black hole"
        } else {
            "reset"
        };
        self.io.log(format!("partition {side:?} | rest ({kind})"));
        if self.io.blackhole {
            self.io.stats.blackholes += 1;
        }
        self.io.partition(&groups);
    }

    pub fn heal(&mut self) {
        let groups: BTreeMap<ServerId, u32> = self.sids().into_iter().map(|s| (s, 0)).collect();
        self.io.log("heal".into());
        self.io.partition(&groups);
    }

    /// Every server up and connected, one established leader of the newest
    /// epoch, every other server serving under it, every history equal to
    /// the committed one.
    pub fn in_sync(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let committed = &self.io.check.committed;
        self.nodes.values().all(|n| {
            n.up && n.serving
                && n.history.len() == committed.len()
                && n.history.is_prefix_of(committed)
                && match &n.role {
                    Role::Leading(_) => n.sid == leader,
                    // An observer learning through a follower is in sync
                    // when that follower is: the leader it elected does not
                    // matter then (ZooKeeper's observer ignores it too).
                    Role::Learning(l) if l.to_master => self.nodes.get(&l.learn_from).is_some_and(
                        |m| matches!(&m.role, Role::Learning(ml) if ml.leader_sid == leader),
                    ),
                    Role::Learning(l) => l.leader_sid == leader,
                    _ => false,
                }
        })
    }

    /// Pauses writes, heals, restarts everyone, and runs until the
    /// ensemble is in sync (bounded by `max_ms` of virtual time).
    pub fn settle(&mut self, max_ms: u64) -> Result<(), String> {
        self.heal();
        for sid in self.sids() {
            self.restart(sid);
        }
        self.writes_paused = true;
        let deadline = self.io.now + max_ms;
        while !self.in_sync() {
            if self.io.now >= deadline {
                let roles: Vec<String> = self
                    .nodes
                    .values()
                    .map(|n| format!("{}: {} at {}", n.sid, n.role_name(), n.history.last_zxid()))
                    .collect();
                return Err(format!(
                    "not in sync {max_ms} ms after healing: {roles:?}, committed up to {}",
                    self.io.check.committed.last_zxid()
                ));
            }
            self.run_for(50)?;
        }
        self.writes_paused = false;
        self.full_check()?;
        self.same_trees()
    }

    /// Every tree serializes to the same bytes: the same txns gave the
    /// same state.
    fn same_trees(&self) -> Result<(), String> {
        let mut first: Option<(ServerId, Vec<u8>)> = None;
        for n in self.nodes.values() {
            let mut bytes = Vec::new();
            n.tree()
                .snapshot()
                .write_to(&mut bytes)
                .map_err(|e| e.to_string())?;
            match &first {
                None => first = Some((n.sid, bytes)),
                Some((sid, b)) if *b != bytes => {
                    return Err(format!("the trees of {sid} and {} differ", n.sid));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}
