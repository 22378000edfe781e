//! Deterministic multi-node elections: N election cores exchange
//! notifications over an in-memory network with seeded random start times
//! and delivery delays (FIFO per pair of servers, as over TCP). Every run
//! must end with every server agreeing on one leader: the voter with the
//! highest (peer epoch, last zxid, sid).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use zab_election::{Election, Notification, Output, Responder, ServerState, Vote};
use zab_wire::{Epoch, QuorumVerifier, ServerId, Zxid};

/// splitmix64: a tiny seeded generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

enum Role {
    Down,
    Looking(Box<Election>),
    /// Settled; `check_at` is when the role loop finds out whether the
    /// role works (see `Sim::check_role`), `None` once it did.
    Settled(Responder, Option<u64>),
}

/// How long a settled server takes to find out that its leader does not
/// lead, or a leader that no quorum follows it (ZooKeeper: the learner's
/// connect/sync timeouts, the leader's `initLimit`); it then looks again.
const ROLE_TIMEOUT_MS: u64 = 2_000;

struct Node {
    last_zxid: Zxid,
    current_epoch: Epoch,
    logical_clock: u64,
    role: Role,
}

struct Sim {
    now: u64,
    rng: Rng,
    qv: QuorumVerifier,
    nodes: BTreeMap<ServerId, Node>,
    /// (delivery time, sequence number, recipient, message)
    wire: BinaryHeap<Reverse<(u64, u64, ServerId, NotificationKey)>>,
    messages: Vec<Notification>,
    /// Last delivery time per (from, to), to keep each link FIFO.
    link_clock: BTreeMap<(ServerId, ServerId), u64>,
    starts: BTreeMap<ServerId, u64>,
    max_delay_ms: u64,
    /// Tie-breaker for messages due at the same time: send order.
    seq: u64,
}

/// Index into `Sim::messages` (notifications are not `Ord`).
type NotificationKey = usize;

impl Sim {
    /// A fresh ensemble: every server at the same logical clock.
    fn new(seed: u64, voters: &[u64], observers: &[u64]) -> Sim {
        let qv = QuorumVerifier::new(
            voters.iter().copied().map(ServerId),
            observers.iter().copied().map(ServerId),
        );
        let mut rng = Rng(seed);
        let clock = rng.range(0, 2);
        let mut nodes = BTreeMap::new();
        for &id in voters.iter().chain(observers) {
            // Small ranges so that ties on epoch and zxid are common.
            let current_epoch = Epoch(rng.range(1, 2));
            let last_zxid = Zxid::new(Epoch(rng.range(1, current_epoch.0)), rng.range(0, 3) as u32);
            nodes.insert(
                ServerId(id),
                Node {
                    last_zxid,
                    current_epoch,
                    logical_clock: clock,
                    role: Role::Down,
                },
            );
        }
        Sim {
            now: 0,
            rng,
            qv,
            nodes,
            wire: BinaryHeap::new(),
            messages: Vec::new(),
            link_clock: BTreeMap::new(),
            starts: BTreeMap::new(),
            max_delay_ms: 80,
            seq: 0,
        }
    }

    /// The leader FastLeaderElection must pick among `voters`.
    fn best(&self, voters: impl IntoIterator<Item = ServerId>) -> ServerId {
        voters
            .into_iter()
            .max_by_key(|id| {
                let n = &self.nodes[id];
                (n.current_epoch, n.last_zxid, *id)
            })
            .expect("at least one voter")
    }

    fn start_at(&mut self, id: ServerId, at: u64) {
        self.starts.insert(id, at);
    }

    fn send(&mut self, from: ServerId, to: ServerId, n: Notification) {
        let delay = self.rng.range(1, self.max_delay_ms);
        let link = self.link_clock.entry((from, to)).or_insert(0);
        let at = (self.now + delay).max(*link);
        *link = at;
        self.messages.push(n);
        self.seq += 1;
        let seq = self.seq;
        self.wire
            .push(Reverse((at, seq, to, self.messages.len() - 1)));
    }

    fn apply(&mut self, id: ServerId, out: Vec<Output>) {
        for o in out {
            if std::env::var_os("SIM_TRACE").is_some() {
                eprintln!("t={} {id}: {o:?}", self.now);
            }
            match o {
                Output::Send { to, n } => self.send(id, to, n),
                Output::Decided { state, vote } => {
                    let node = self.nodes.get_mut(&id).expect("known node");
                    if let Role::Looking(e) = &node.role {
                        node.logical_clock = e.logical_clock();
                    }
                    node.role = Role::Settled(
                        Responder::new(id, self.qv.clone(), state, vote, 0),
                        Some(self.now + ROLE_TIMEOUT_MS),
                    );
                }
            }
        }
    }

    /// Runs until every started server has settled; panics after `limit_ms`
    /// of simulated time.
    fn run_until_settled(&mut self, limit_ms: u64) {
        loop {
            let all_settled = self.starts.is_empty()
                && self
                    .nodes
                    .values()
                    .all(|n| matches!(n.role, Role::Down | Role::Settled(_, None)));
            if all_settled {
                return;
            }
            if self.now > limit_ms {
                let states: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|(id, n)| match &n.role {
                        Role::Down => format!("{id}: down"),
                        Role::Looking(e) => format!("{id}: looking {:?}", e.proposal()),
                        Role::Settled(r, _) => format!("{id}: {:?} {:?}", r.state(), r.vote()),
                    })
                    .collect();
                panic!("no agreement after {limit_ms} ms: {states:#?}");
            }
            // The next event: a start, a delivery or an election timer.
            let next_start = self.starts.iter().map(|(id, t)| (*t, *id)).min();
            let next_wire = self.wire.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|(id, n)| match &n.role {
                    Role::Looking(e) => e.next_deadline().map(|d| (d, *id)),
                    Role::Settled(_, check) => check.map(|d| (d, *id)),
                    Role::Down => None,
                })
                .min();
            let t_start = next_start.map(|(t, _)| t).unwrap_or(u64::MAX);
            let t_wire = next_wire.unwrap_or(u64::MAX);
            let t_timer = next_timer.map(|(t, _)| t).unwrap_or(u64::MAX);
            let t = t_start.min(t_wire).min(t_timer);
            assert!(t != u64::MAX, "nothing left to happen");
            self.now = self.now.max(t);
            if t == t_start {
                let (_, id) = next_start.expect("a start");
                self.starts.remove(&id);
                let node = &self.nodes[&id];
                let (e, out) = Election::new(
                    id,
                    self.qv.clone(),
                    node.last_zxid,
                    node.current_epoch,
                    node.logical_clock,
                    self.now,
                );
                self.nodes.get_mut(&id).expect("known node").role = Role::Looking(Box::new(e));
                self.apply(id, out);
            } else if t == t_wire {
                let Some(Reverse((_, _, to, key))) = self.wire.pop() else {
                    unreachable!("peeked above");
                };
                let n = self.messages[key];
                let now = self.now;
                if let (Role::Down, Some(&start)) = (&self.nodes[&to].role, self.starts.get(&to)) {
                    // Not up yet: the sender's connection attempt succeeds
                    // once it is, and the queued message goes through then.
                    let at = start + self.rng.range(1, self.max_delay_ms);
                    self.seq += 1;
                    let seq = self.seq;
                    self.wire.push(Reverse((at, seq, to, key)));
                    continue;
                }
                let node = self.nodes.get_mut(&to).expect("known node");
                let out = match &mut node.role {
                    // Nobody listens on a server that is down.
                    Role::Down => Vec::new(),
                    Role::Looking(e) => e.on_notification(now, n),
                    Role::Settled(r, _) => r
                        .on_notification(&n)
                        .map(|reply| Output::Send {
                            to: n.sender,
                            n: reply,
                        })
                        .into_iter()
                        .collect(),
                };
                self.apply(to, out);
            } else {
                let (_, id) = next_timer.expect("a timer");
                let now = self.now;
                let out = match &mut self.nodes.get_mut(&id).expect("known node").role {
                    Role::Looking(e) => e.on_timer(now),
                    Role::Settled(..) => self.check_role(id),
                    Role::Down => Vec::new(),
                };
                self.apply(id, out);
            }
        }
    }

    /// The role loop of a settled server, `ROLE_TIMEOUT_MS` after it
    /// settled: a leader needs a quorum of voters following it, a learner
    /// needs its leader to lead in the same epoch. Otherwise the server goes
    /// back to LOOKING with a new round.
    fn check_role(&mut self, id: ServerId) -> Vec<Output> {
        let (state, vote) = self.settled(id);
        let works = if state == ServerState::Leading {
            let followers = self.nodes.iter().filter_map(|(other, n)| match &n.role {
                Role::Settled(r, _) if r.vote().leader == id => Some(other),
                _ => None,
            });
            self.qv.contains_quorum(followers)
        } else {
            matches!(&self.nodes[&vote.leader].role,
                Role::Settled(r, _) if r.state() == ServerState::Leading
                    && r.vote().peer_epoch == vote.peer_epoch)
        };
        let node = self.nodes.get_mut(&id).expect("known node");
        if works {
            if let Role::Settled(_, check) = &mut node.role {
                *check = None;
            }
            return Vec::new();
        }
        let (e, out) = Election::new(
            id,
            self.qv.clone(),
            node.last_zxid,
            node.current_epoch,
            node.logical_clock,
            self.now,
        );
        node.role = Role::Looking(Box::new(e));
        if state == ServerState::Leading {
            // Its learners lose their link to it and find out at once (a
            // learner checked earlier, while this server still led, would
            // otherwise follow it forever).
            let now = self.now;
            for n in self.nodes.values_mut() {
                if let Role::Settled(r, check) = &mut n.role {
                    if r.vote().leader == id && r.state() != ServerState::Leading {
                        *check = Some(now);
                    }
                }
            }
        }
        out
    }

    fn settled(&self, id: ServerId) -> (ServerState, Vote) {
        match &self.nodes[&id].role {
            Role::Settled(r, _) => (r.state(), *r.vote()),
            _ => panic!("server {id} has not settled"),
        }
    }

    /// The leader every server settled on, if they all agree.
    fn agreed_leader(&self) -> ServerId {
        let leaders: Vec<ServerId> = self
            .nodes
            .keys()
            .map(|id| self.settled(*id).1.leader)
            .collect();
        assert!(
            leaders.windows(2).all(|w| w[0] == w[1]),
            "servers disagree: {leaders:?}"
        );
        leaders[0]
    }

    /// Asserts that every settled server agrees on `leader`, that the leader
    /// leads, voters follow and observers observe.
    fn assert_agree_on(&self, leader: ServerId, context: &str) {
        for (&id, _) in self.nodes.iter() {
            let (state, vote) = self.settled(id);
            assert_eq!(
                vote.leader, leader,
                "{context}: server {id} settled on the wrong leader"
            );
            let expected = if id == leader {
                ServerState::Leading
            } else if self.qv.is_voter(id) {
                ServerState::Following
            } else {
                ServerState::Observing
            };
            assert_eq!(state, expected, "{context}: server {id}");
        }
    }
}

/// `range`, or just the seed in `SIM_SEED` when replaying one.
fn seeds(range: std::ops::Range<u64>) -> std::ops::Range<u64> {
    match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => seed..seed + 1,
        None => range,
    }
}

fn run_fresh_ensemble(voters: &[u64], observers: &[u64], seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let mut sim = Sim::new(seed, voters, observers);
        let ids: Vec<ServerId> = sim.nodes.keys().copied().collect();
        for id in ids {
            // Every server starts within 50 ms; with at most 80 ms per
            // message each vote reaches everyone inside the 200 ms finalize
            // wait, which is what makes the best server win.
            let at = sim.rng.range(0, 50);
            sim.start_at(id, at);
        }
        sim.run_until_settled(120_000);
        let best = sim.best(voters.iter().copied().map(ServerId));
        sim.assert_agree_on(best, &format!("seed {seed}, voters {voters:?}"));
    }
}

#[test]
fn three_voters_agree_on_the_best_server() {
    run_fresh_ensemble(&[1, 2, 3], &[], seeds(0..300));
}

#[test]
fn five_voters_agree_on_the_best_server() {
    run_fresh_ensemble(&[1, 2, 3, 4, 5], &[], seeds(1000..1300));
}

#[test]
fn observers_learn_the_leader_the_voters_chose() {
    run_fresh_ensemble(&[1, 2, 3], &[4], seeds(2000..2200));
    run_fresh_ensemble(&[1, 2, 3, 4, 5], &[6, 7], seeds(3000..3100));
}

#[test]
fn servers_starting_in_different_rounds_still_agree() {
    // With clocks apart, the best server's vote may reach the others only
    // after a quorum has settled without it (as in ZooKeeper): the rule is
    // then only that everyone settles on the same voter, which leads.
    for seed in seeds(5000..5300) {
        let mut sim = Sim::new(seed, &[1, 2, 3, 4, 5], &[6]);
        let ids: Vec<ServerId> = sim.nodes.keys().copied().collect();
        for id in ids {
            let clock = sim.rng.range(0, 3);
            sim.nodes.get_mut(&id).expect("known node").logical_clock = clock;
            let at = sim.rng.range(0, 300);
            sim.start_at(id, at);
        }
        sim.run_until_settled(240_000);
        let leader = sim.agreed_leader();
        assert!(sim.qv.is_voter(leader), "seed {seed}");
        sim.assert_agree_on(leader, &format!("seed {seed}"));
    }
}

#[test]
fn a_late_joiner_learns_the_settled_leader_from_replies() {
    for seed in seeds(4000..4200) {
        let mut sim = Sim::new(seed, &[1, 2, 3, 4, 5], &[]);
        let late = ServerId(sim.rng.range(1, 5));
        let others: Vec<ServerId> = sim.nodes.keys().copied().filter(|id| *id != late).collect();
        for &id in &others {
            let at = sim.rng.range(0, 50);
            sim.start_at(id, at);
        }
        sim.run_until_settled(120_000);
        let leader = sim.best(others.iter().copied());
        for &id in &others {
            assert_eq!(sim.settled(id).1.leader, leader, "seed {seed}");
        }
        // The late server may have the best log of all and a clock that is
        // behind, equal or ahead: it must still follow the settled leader.
        {
            let node = sim.nodes.get_mut(&late).expect("known node");
            node.current_epoch = Epoch(3);
            node.last_zxid = Zxid::new(Epoch(3), 9);
            node.logical_clock = seed % 4;
        }
        let at = sim.now + 1000;
        sim.start_at(late, at);
        sim.run_until_settled(240_000);
        let (state, vote) = sim.settled(late);
        assert_eq!(
            (state, vote.leader),
            (ServerState::Following, leader),
            "seed {seed}"
        );
        for id in others {
            assert_eq!(sim.settled(id).1.leader, leader, "seed {seed}");
        }
    }
}
