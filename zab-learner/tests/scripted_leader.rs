//! Socket-free scenarios: a scripted leader, written from the shared
//! leader ⇄ learner protocol (and reference F.4's sync choice), drives a
//! follower or an observer through DIFF, TRUNC and SNAP sync and then the
//! broadcast. The learner's caller is simulated by `Node`: an in-memory log
//! with explicit durability, epoch files, and a key-value tree that txns
//! are applied to. Each scenario checks the end state against the leader's
//! (same tree, same log, epochs adopted) and the orderings the protocol
//! requires (persist before send, durable before the NEWLEADER ACK, commits
//! in zxid order and never twice).

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use prost::Message;
use zab_learner::{Learner, LearnerAction, LearnerConfig, Phase, Role, SyncMode, Timing};
use zab_wire::proto::txn_body::Op;
use zab_wire::proto::{
    AckEpoch, LearnerInfo, PacketType, QuorumPacket, SessionTouches, SetDataTxn, SnapshotHeader,
    Txn, TxnBody, Znode,
};
use zab_wire::{Epoch, ServerId, SessionId, Zxid};

fn z(epoch: u64, counter: u32) -> Zxid {
    Zxid::new(Epoch(epoch), counter)
}

/// A txn that sets `/k<counter>` to `value`.
fn txn(zxid: Zxid, value: &str) -> Txn {
    Txn {
        origin: 0,
        session_id: 0x100,
        cxid: zxid.counter() as i32,
        zxid: zxid.0,
        time: 0,
        body: Some(TxnBody {
            op: Some(Op::SetData(SetDataTxn {
                path: format!("/k{}", zxid.counter()),
                data: Some(Bytes::from(value.to_owned())),
                version: 0,
            })),
        }),
    }
}

type Tree = BTreeMap<String, Bytes>;

fn apply(tree: &mut Tree, t: &Txn) {
    if let Some(Op::SetData(s)) = t.body.as_ref().and_then(|b| b.op.as_ref()) {
        tree.insert(s.path.clone(), s.data.clone().unwrap_or_default());
    }
}

fn pkt(ty: PacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        r#type: ty as i32,
        zxid: zxid.0,
        data,
        authinfo: vec![],
    }
}

fn ty(p: &QuorumPacket) -> PacketType {
    PacketType::try_from(p.r#type).expect("known packet type")
}

// ------------------------------------------------------------ the learner's caller

/// What a zab server does with the learner's actions, in memory.
struct Node {
    learner: Learner,
    now: u64,
    accepted: Epoch,
    current: Epoch,
    /// The txn log: zxid → encoded txn.
    log: BTreeMap<Zxid, Bytes>,
    /// Appended but not yet reported durable, in order.
    not_durable: Vec<Zxid>,
    /// The last snapshot: the base that TRUNC reloads from.
    snapshot: (Zxid, Tree),
    tree: Tree,
    last_applied: Zxid,
    /// Packets to the leader, not yet read by it.
    outbox: VecDeque<QuorumPacket>,
    /// Effects in order, to check orderings.
    journal: Vec<String>,
    serving: bool,
}

impl Node {
    /// A server whose log holds `history`, all replayed into its tree at
    /// start (ZooKeeper's `loadDataBase` replays the whole log).
    fn start(role: Role, accepted: Epoch, current: Epoch, history: &[Txn]) -> Node {
        let mut log = BTreeMap::new();
        let mut tree = Tree::new();
        for t in history {
            log.insert(Zxid(t.zxid), Bytes::from(t.encode_to_vec()));
            apply(&mut tree, t);
        }
        let last = log.keys().next_back().copied().unwrap_or(Zxid::ZERO);
        let config = LearnerConfig {
            me: ServerId(2),
            role,
            timing: Timing {
                tick_ms: 50,
                init_limit: 10,
                sync_limit: 5,
            },
            config_version: 0,
            observer_logs: true,
        };
        let (learner, actions) = Learner::new(config, accepted, current, last, 0);
        let mut node = Node {
            learner,
            now: 0,
            accepted,
            current,
            log,
            not_durable: vec![],
            snapshot: (Zxid::ZERO, Tree::new()),
            tree,
            last_applied: last,
            outbox: VecDeque::new(),
            journal: vec![],
            serving: false,
        };
        node.exec(actions);
        node
    }

    fn deliver(&mut self, p: QuorumPacket) {
        self.now += 1;
        let actions = self.learner.on_packet(self.now, p);
        self.exec(actions);
    }

    /// The log's writer thread finishes a group commit.
    fn flush(&mut self) {
        if let Some(&last) = self.not_durable.last() {
            self.not_durable.clear();
            self.journal.push(format!("durable {last}"));
            let actions = self.learner.on_durable(self.now, last);
            self.exec(actions);
        }
    }

    fn exec(&mut self, actions: Vec<LearnerAction>) {
        for a in actions {
            match a {
                LearnerAction::Send(p) => {
                    self.journal
                        .push(format!("send {} {}", ty(&p).as_str_name(), Zxid(p.zxid)));
                    self.outbox.push_back(p);
                }
                LearnerAction::PersistAcceptedEpoch(e) => {
                    self.journal.push(format!("accepted {e}"));
                    self.accepted = e;
                }
                LearnerAction::PersistCurrentEpoch(e) => {
                    assert!(
                        self.not_durable.is_empty(),
                        "currentEpoch persisted while {:?} are not durable",
                        self.not_durable
                    );
                    self.journal.push(format!("current {e}"));
                    self.current = e;
                }
                LearnerAction::TruncateLog { after } => {
                    self.journal.push(format!("truncate {after}"));
                    self.log.retain(|z, _| *z <= after);
                    // Reload: the last snapshot plus the log up to `after`.
                    let (base, mut tree) = self.snapshot.clone();
                    for (z, raw) in self.log.range(base.next()..) {
                        let t = Txn::decode(raw.clone()).expect("own log decodes");
                        assert_eq!(Zxid(t.zxid), *z);
                        apply(&mut tree, &t);
                    }
                    self.tree = tree;
                    self.last_applied = after;
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    self.journal.push(format!("snapshot {zxid}"));
                    let tree = decode_snapshot(data.to_bytes(), zxid);
                    self.log.retain(|z, _| *z <= zxid);
                    self.snapshot = (zxid, tree.clone());
                    self.tree = tree;
                    self.last_applied = zxid;
                }
                LearnerAction::AppendLog(entries) => {
                    for (zxid, raw) in entries {
                        let last = self.log.keys().next_back().copied().unwrap_or(Zxid::ZERO);
                        assert!(zxid > last, "append {zxid} after {last}");
                        self.journal.push(format!("append {zxid}"));
                        self.log.insert(zxid, raw);
                        self.not_durable.push(zxid);
                    }
                }
                LearnerAction::Apply(txns) => {
                    for t in txns {
                        let zxid = Zxid(t.zxid);
                        assert!(
                            zxid > self.last_applied,
                            "apply {zxid} after {}",
                            self.last_applied
                        );
                        self.journal.push(format!("apply {zxid}"));
                        apply(&mut self.tree, &t);
                        self.last_applied = zxid;
                    }
                }
                LearnerAction::StartServing => {
                    self.journal.push("serving".into());
                    self.serving = true;
                }
                LearnerAction::GiveUp { reason } => panic!("learner gave up: {reason}"),
                other => panic!("unexpected action in this scenario: {other:?}"),
            }
        }
    }

    fn position(&self, entry: &str) -> usize {
        self.journal
            .iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("{entry:?} not in journal {:#?}", self.journal))
    }
}

/// The leader's snapshot stream: a SnapshotHeader, then one Znode per
/// node, each length-delimited (the shape of zab-tree's snapshots).
fn encode_snapshot(zxid: Zxid, tree: &Tree) -> Bytes {
    let mut out = BytesMut::new();
    let header = SnapshotHeader {
        zxid: zxid.0,
        sessions: vec![],
        node_count: tree.len() as u64,
    };
    out.extend_from_slice(&header.encode_length_delimited_to_vec());
    for (path, data) in tree {
        let node = Znode {
            path: path.clone(),
            data: Some(data.clone()),
            ..Znode::default()
        };
        out.extend_from_slice(&node.encode_length_delimited_to_vec());
    }
    out.freeze()
}

fn decode_snapshot(mut data: Bytes, zxid: Zxid) -> Tree {
    let header = SnapshotHeader::decode_length_delimited(&mut data).expect("header");
    assert_eq!(Zxid(header.zxid), zxid);
    let mut tree = Tree::new();
    for _ in 0..header.node_count {
        let node = Znode::decode_length_delimited(&mut data).expect("znode");
        tree.insert(node.path, node.data.unwrap_or_default());
    }
    assert!(data.is_empty(), "trailing snapshot bytes");
    tree
}

// ------------------------------------------------------------ the scripted leader

/// The leader's side, from the shared protocol: an established epoch, its
/// committed history (the committedLog window starts at `window_start`),
/// and proposals still outstanding when the learner joins.
struct ScriptedLeader {
    epoch: Epoch,
    committed: Vec<Txn>,
    window_start: usize,
    outstanding: Vec<Txn>,
}

enum Plan {
    Diff(Zxid, Vec<Txn>),
    Trunc(Zxid, Vec<Txn>),
    Snap(Zxid),
}

impl ScriptedLeader {
    fn last_processed(&self) -> Zxid {
        self.committed.last().map_or(Zxid::ZERO, |t| Zxid(t.zxid))
    }

    fn tree(&self) -> Tree {
        let mut tree = Tree::new();
        self.committed.iter().for_each(|t| apply(&mut tree, t));
        tree
    }

    /// Reference F.4 rules 2, 3, 4 and 6 (no on-disk log replay).
    fn plan(&self, peer_last: Zxid) -> Plan {
        let last = self.last_processed();
        if peer_last == last {
            return Plan::Diff(peer_last, vec![]);
        }
        let window = &self.committed[self.window_start..];
        let (min, max) = (Zxid(window[0].zxid), last);
        if peer_last > max && !peer_last.is_epoch_start() {
            return Plan::Trunc(max, vec![]);
        }
        if min <= peer_last && peer_last <= max {
            let i = window
                .iter()
                .position(|t| Zxid(t.zxid) >= peer_last)
                .expect("max >= peer_last");
            let at = Zxid(window[i].zxid);
            if at == peer_last {
                return Plan::Diff(max, window[i + 1..].to_vec());
            }
            if at.epoch() != peer_last.epoch() || i == 0 {
                return Plan::Snap(last);
            }
            return Plan::Trunc(Zxid(window[i - 1].zxid), window[i..].to_vec());
        }
        Plan::Snap(last)
    }

    /// Reads the learner's next packet, which must be of type `want`.
    fn expect(&self, node: &mut Node, want: PacketType) -> QuorumPacket {
        let p = node
            .outbox
            .pop_front()
            .unwrap_or_else(|| panic!("expected {want:?}, learner sent nothing"));
        assert_eq!(ty(&p), want, "packet {p:?}");
        p
    }

    fn txn_packet(t: &Txn, ty: PacketType) -> QuorumPacket {
        pkt(ty, Zxid(t.zxid), Bytes::from(t.encode_to_vec()))
    }

    /// Registration and sync up to UPTODATE. Returns the sync mode used.
    fn sync(&mut self, node: &mut Node, role: Role) -> SyncMode {
        let newleader_zxid = Zxid::new(self.epoch, 0);
        let info_type = match role {
            Role::Follower => PacketType::Followerinfo,
            Role::Observer => PacketType::Observerinfo,
        };
        let info = self.expect(node, info_type);
        assert_eq!(Zxid(info.zxid), Zxid::new(node.accepted, 0));
        assert_eq!(LearnerInfo::decode(info.data).unwrap().sid, 2);

        node.deliver(pkt(PacketType::Leaderinfo, newleader_zxid, Bytes::new()));
        let ack = self.expect(node, PacketType::Ackepoch);
        let body = AckEpoch::decode(ack.data).unwrap();
        assert_eq!(body.state.unwrap().last_zxid, ack.zxid);
        assert!(node.accepted == self.epoch);
        let peer_last = Zxid(ack.zxid);

        let (mode, txns) = match self.plan(peer_last) {
            Plan::Diff(zxid, txns) => {
                node.deliver(pkt(PacketType::Diff, zxid, Bytes::new()));
                (SyncMode::Diff, txns)
            }
            Plan::Trunc(zxid, txns) => {
                node.deliver(pkt(PacketType::Trunc, zxid, Bytes::new()));
                (SyncMode::Trunc, txns)
            }
            Plan::Snap(zxid) => {
                node.deliver(pkt(PacketType::Snap, zxid, Bytes::new()));
                let body = encode_snapshot(zxid, &self.tree());
                // Small chunks to exercise reassembly.
                for chunk in body.chunks(7) {
                    let chunk = Bytes::copy_from_slice(chunk);
                    node.deliver(pkt(PacketType::SnapChunk, Zxid(0), chunk));
                }
                node.deliver(pkt(PacketType::SnapEnd, Zxid(0), Bytes::new()));
                (SyncMode::Snap, vec![])
            }
        };
        for t in &txns {
            node.deliver(Self::txn_packet(t, PacketType::Proposal));
            node.deliver(pkt(PacketType::Commit, Zxid(t.zxid), Bytes::new()));
        }
        // startForwarding: voters also get the outstanding proposals.
        if role == Role::Follower {
            for t in &self.outstanding {
                node.deliver(Self::txn_packet(t, PacketType::Proposal));
            }
        }
        node.deliver(pkt(PacketType::Newleader, newleader_zxid, Bytes::new()));
        // Some of the synced txns may not be durable yet: no ACK before.
        if !node.not_durable.is_empty() {
            assert!(node.outbox.is_empty(), "ACK before the sync was durable");
            node.flush();
        }
        let ack = self.expect(node, PacketType::Ack);
        assert_eq!(Zxid(ack.zxid), newleader_zxid);
        assert_eq!(node.current, self.epoch);

        // The outstanding proposals reach a quorum before UPTODATE.
        for t in std::mem::take(&mut self.outstanding) {
            match role {
                Role::Follower => node.deliver(pkt(PacketType::Commit, Zxid(t.zxid), Bytes::new())),
                Role::Observer => node.deliver(Self::txn_packet(&t, PacketType::Inform)),
            }
            self.committed.push(t);
        }
        assert!(!node.serving);
        node.deliver(pkt(PacketType::Uptodate, Zxid(-1), Bytes::new()));
        let ack = self.expect(node, PacketType::Ack);
        assert_eq!(Zxid(ack.zxid), newleader_zxid);
        assert!(node.serving);
        assert_eq!(node.learner.phase(), Phase::Broadcasting);
        // Txns logged at UPTODATE are acked through the normal path.
        node.flush();
        while let Some(p) = node.outbox.pop_front() {
            assert_eq!(ty(&p), PacketType::Ack);
            assert!(Zxid(p.zxid) <= self.last_processed());
        }
        mode
    }

    /// Proposes `n` txns and commits them: PROPOSAL → (durable) ACK →
    /// COMMIT for followers, INFORM for observers. Durability arrives in
    /// two group commits; the leader commits each acked batch with one
    /// COMMIT (shared protocol).
    fn broadcast(&mut self, node: &mut Node, role: Role, n: u32) {
        let first = self.last_processed().counter() + 1;
        let first = if self.last_processed().epoch() == self.epoch {
            first
        } else {
            1
        };
        let batch: Vec<Txn> = (first..first + n)
            .map(|c| txn(Zxid::new(self.epoch, c), &format!("v{c}")))
            .collect();
        match role {
            Role::Follower => {
                for t in &batch {
                    node.deliver(Self::txn_packet(t, PacketType::Proposal));
                }
                assert!(node.outbox.is_empty(), "ACK before durable");
                let half = batch.len() / 2;
                for part in [&batch[..half], &batch[half..]] {
                    let Some(last) = part.last() else { continue };
                    // The log makes this part durable.
                    let keep = node.not_durable.split_off(part.len());
                    node.flush();
                    node.not_durable = keep;
                    let ack = self.expect(node, PacketType::Ack);
                    assert_eq!(ack.zxid, last.zxid);
                    let before = node.last_applied;
                    node.deliver(pkt(PacketType::Commit, Zxid(ack.zxid), Bytes::new()));
                    assert!(before < Zxid(last.zxid));
                    assert_eq!(node.last_applied, Zxid(last.zxid));
                }
            }
            Role::Observer => {
                for t in &batch {
                    node.deliver(Self::txn_packet(t, PacketType::Inform));
                }
                node.flush();
                assert!(node.outbox.is_empty(), "observers never ACK");
            }
        }
        self.committed.extend(batch);
    }

    fn ping(&self, node: &mut Node) {
        node.learner.touch(SessionId(0x100), 4000);
        node.deliver(pkt(PacketType::Ping, self.last_processed(), Bytes::new()));
        let reply = self.expect(node, PacketType::Ping);
        assert_eq!(Zxid(reply.zxid), self.last_processed());
        let touches = SessionTouches::decode(reply.data).unwrap();
        assert_eq!(touches.sessions.len(), 1);
        assert_eq!(touches.sessions[0].session_id, 0x100);
    }

    fn check_replica(&self, node: &Node) {
        assert_eq!(
            node.tree,
            self.tree(),
            "replica tree differs from the leader's"
        );
        assert_eq!(node.last_applied, self.last_processed());
        // The log holds the leader's history above the last snapshot, byte
        // for byte.
        let base = node.snapshot.0;
        let want: BTreeMap<Zxid, Bytes> = self
            .committed
            .iter()
            .filter(|t| Zxid(t.zxid) > base)
            .map(|t| (Zxid(t.zxid), Bytes::from(t.encode_to_vec())))
            .collect();
        let got: BTreeMap<Zxid, Bytes> = node
            .log
            .range(base.next()..)
            .map(|(z, b)| (*z, b.clone()))
            .collect();
        assert_eq!(got, want, "replica log differs from the leader's history");
        assert_eq!((node.accepted, node.current), (self.epoch, self.epoch));
    }
}

/// History: epoch 1 counters 1..=8, then epoch 3 counters 1..=3 committed
/// and 3:4 outstanding. The leader's epoch is 3.
fn leader(window_start: usize) -> ScriptedLeader {
    let mut committed: Vec<Txn> = (1..=8).map(|c| txn(z(1, c), &format!("a{c}"))).collect();
    committed.extend((1..=3).map(|c| txn(z(3, c), &format!("c{c}"))));
    ScriptedLeader {
        epoch: Epoch(3),
        committed,
        window_start,
        outstanding: vec![txn(z(3, 4), "c4")],
    }
}

fn scenario(role: Role, mut leader: ScriptedLeader, mut node: Node, want: SyncMode) {
    assert_eq!(leader.sync(&mut node, role), want);
    assert_eq!(node.learner.sync_mode(), Some(want));
    leader.broadcast(&mut node, role, 5);
    leader.ping(&mut node);
    leader.broadcast(&mut node, role, 3);
    leader.check_replica(&node);

    // Orderings the protocol requires.
    let accepted = node.position("accepted 3");
    let ackepoch = node
        .journal
        .iter()
        .position(|e| e.starts_with("send ACKEPOCH"))
        .expect("ACKEPOCH sent");
    assert!(accepted < ackepoch);
    let current = node.position("current 3");
    let newleader_ack = node.position("send ACK 0x300000000");
    assert!(current < newleader_ack);
    for (i, e) in node.journal.iter().enumerate() {
        let Some(acked) = e.strip_prefix("send ACK ").map(parse_zxid) else {
            continue;
        };
        if acked.is_epoch_start() {
            continue;
        }
        // Every proposal ACK follows a durability report covering it.
        let covered = node.journal[..i]
            .iter()
            .filter_map(|d| d.strip_prefix("durable ").map(parse_zxid))
            .any(|d| d >= acked);
        assert!(covered, "{e} before it was durable");
    }
    assert!(node.position("serving") > newleader_ack);
}

fn parse_zxid(s: &str) -> Zxid {
    Zxid(i64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex zxid"))
}

fn history(upto: Zxid) -> Vec<Txn> {
    leader(0)
        .committed
        .into_iter()
        .filter(|t| Zxid(t.zxid) <= upto)
        .collect()
}

#[test]
fn follower_diff_sync_then_broadcast() {
    let node = Node::start(Role::Follower, Epoch(1), Epoch(1), &history(z(1, 5)));
    scenario(Role::Follower, leader(0), node, SyncMode::Diff);
}

#[test]
fn observer_diff_sync_then_broadcast() {
    let node = Node::start(Role::Observer, Epoch(1), Epoch(1), &history(z(1, 5)));
    scenario(Role::Observer, leader(0), node, SyncMode::Diff);
}

/// The learner logged 1:9 and 1:10 that never reached a quorum and that
/// the leader's history lacks: TRUNC to 1:8, the divergent writes vanish.
fn divergent_node(role: Role) -> Node {
    let mut own = history(z(1, 8));
    own.push(txn(z(1, 9), "lost"));
    own.push(txn(z(1, 10), "lost"));
    Node::start(role, Epoch(1), Epoch(1), &own)
}

/// A leader that has just taken over at epoch 3 from history 1:1..=1:8,
/// with its first proposal 3:1 outstanding: the learner's 1:10 is above its
/// maxCommittedLog, so F.4 rule 3 picks TRUNC(1:8).
fn truncating_leader() -> ScriptedLeader {
    ScriptedLeader {
        epoch: Epoch(3),
        committed: (1..=8).map(|c| txn(z(1, c), &format!("a{c}"))).collect(),
        window_start: 0,
        outstanding: vec![txn(z(3, 1), "c1")],
    }
}

#[test]
fn follower_trunc_sync_then_broadcast() {
    let node = divergent_node(Role::Follower);
    assert_eq!(node.tree.get("/k9"), Some(&Bytes::from_static(b"lost")));
    let leader = truncating_leader();
    assert!(matches!(leader.plan(z(1, 10)), Plan::Trunc(t, _) if t == z(1, 8)));
    scenario(Role::Follower, leader, node, SyncMode::Trunc);
}

#[test]
fn the_leaders_sync_choice_follows_reference_f4() {
    let l = leader(3);
    assert!(matches!(l.plan(z(3, 3)), Plan::Diff(d, ref t) if d == z(3, 3) && t.is_empty()));
    assert!(matches!(l.plan(z(1, 5)), Plan::Diff(d, ref t) if d == z(3, 3) && t.len() == 6));
    assert!(matches!(l.plan(z(1, 2)), Plan::Snap(s) if s == z(3, 3)));
    assert!(matches!(l.plan(z(4, 1)), Plan::Trunc(t, _) if t == z(3, 3)));
}

#[test]
fn observer_trunc_sync_then_broadcast() {
    scenario(
        Role::Observer,
        truncating_leader(),
        divergent_node(Role::Observer),
        SyncMode::Trunc,
    );
}

#[test]
fn follower_snap_sync_then_broadcast() {
    // A fresh server, and a committed window that starts at 1:4: too far
    // behind for a DIFF.
    let node = Node::start(Role::Follower, Epoch(0), Epoch(0), &[]);
    scenario(Role::Follower, leader(3), node, SyncMode::Snap);
}

#[test]
fn observer_snap_sync_then_broadcast() {
    let node = Node::start(Role::Observer, Epoch(0), Epoch(0), &history(z(1, 2)));
    scenario(Role::Observer, leader(3), node, SyncMode::Snap);
}
