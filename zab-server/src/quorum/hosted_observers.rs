//! `observerMasterPort`, both ends (ZooKeeper 3.6+).
//!
//! A follower in sync listens on that port at its quorum address and hosts
//! observers there: zab-leader's [`ObserverMaster`] decides, this module
//! does the I/O — the listener, one [`LearnerLink`] per observer, the
//! follower's applied txns fed in, the observers' requests handed to the
//! follower's own learner for the leader, and the answers routed back.
//!
//! An observer with the key picks a voter to learn from instead of the
//! leader, trying them in turn from a random start (ZooKeeper's
//! `QuorumPeer.nextObserverMaster` walks a shuffled list). The leader does
//! not listen on the port, as in ZooKeeper: an observer that tries it fails
//! to connect, looks again and moves on to the next voter.

use std::net::SocketAddr;

use bytes::Bytes;
use prost::Message;
use zab_election::PeerAddr;
use zab_leader::{ConnId, LearnerKind, ObserverMaster, ObserverMasterAction};

use crate::store_txn_log::StoreTxnLog;
use zab_wire::proto::{QuorumPacket, Txn};
use zab_wire::ServerId;

use super::{committed_window, newest_snapshot_size, stream_snapshot, LearnerLink, Peer, Role};
use crate::quorum_transport::{self, LinkEvent, LinkId};
use crate::server::CoreMsg;
use foldhash::{HashMap, HashMapExt};

/// How long an observer keeps trying one voter's observer master before it
/// looks again and tries the next: a voter that does not listen (the
/// leader, or a follower still syncing) refuses at once, and the next voter
/// may serve. ZooKeeper's learner makes 5 attempts a second apart.
pub(super) const MASTER_CONNECT_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A follower's observers: their master core, links and listener.
pub(super) struct HostedObservers {
    pub(super) master: ObserverMaster,
    pub(super) links: HashMap<LinkId, LearnerLink>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for HostedObservers {
    /// Frees the port; dropping the links ends every observer's stream.
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl HostedObservers {
    /// For `mntr` and the admin server's `observers`: the observers past
    /// their sync, as ZooKeeper's `ObserverMaster.getActiveObservers`.
    pub(super) fn synced(&self) -> Vec<crate::admin::LearnerHandlerInfo> {
        self.master
            .observers()
            .into_iter()
            .filter(|s| {
                s.kind == Some(LearnerKind::Observer)
                    && s.state == zab_leader::HandlerState::Broadcasting
            })
            .filter_map(|s| Some(self.links.get(&LinkId(s.conn.0))?.info(s.sid?)))
            .collect()
    }
}

impl Peer {
    /// The voter an observer learns from next, and where its observer
    /// master listens: its quorum address's IP at this server's
    /// `observerMasterPort` (ZooKeeper's `updateObserverMasterList`). `None`
    /// without the key: observers learn from the leader.
    pub(super) fn next_observer_master(&mut self) -> Option<(ServerId, PeerAddr)> {
        let port = self.cfg.observer_master_port?;
        let voters: Vec<ServerId> = self.verifier.voters().iter().copied().collect();
        if voters.is_empty() {
            return None;
        }
        let sid = voters[self.next_observer_master % voters.len()];
        self.next_observer_master = self.next_observer_master.wrapping_add(1);
        let host = self.quorum_addrs.get(&sid)?.host.clone();
        Some((sid, PeerAddr::new(host, port)))
    }

    /// A follower now in sync starts hosting observers, with `observerMasterPort`
    /// (ZooKeeper's `Follower.followLeader` starts its `ObserverMaster` there).
    pub(super) fn host_observers(&mut self) {
        let Some(port) = self.cfg.observer_master_port else {
            return;
        };
        let Role::Learning(l) = &self.role else {
            return;
        };
        let Some(epoch) = l.learner.as_ref().and_then(|x| x.leader_epoch()) else {
            return;
        };
        let last_applied = self.state.tree().last_zxid();
        // The txns committed while this follower synced were applied in
        // the step that brought UPTODATE, and their appends are only
        // queued: read now, the window would stop short of `last_applied`
        // and `on_committed` would go on after a hole, so an observer
        // syncing from it would get a DIFF without those txns (or a TRUNC
        // below its own). ZooKeeper's window has no such gap: it is kept in
        // memory as the txns are applied (`ZKDatabase.addCommittedProposal`).
        self.drain_log();
        let window = self.cfg.commit_log_count.max(500) as usize;
        let master = ObserverMaster::new(
            self.learner_master_config(),
            epoch,
            last_applied,
            committed_window(&self.store, last_applied, window),
            Box::new(StoreTxnLog::new(self.store.log())),
            newest_snapshot_size(&self.store),
            crate::server::elapsed_ms() as u64,
        );
        // On the quorum address's IP, or every interface with
        // `quorumListenOnAllIPs`, as the quorum port itself.
        let listen = SocketAddr::new(self.quorum_listen.ip(), port);
        let gen = self.gen;
        let to_core = self.tx.clone();
        let events = move |event| to_core.send(CoreMsg::Link { gen, event }).is_ok();
        let max_message = quorum_transport::max_message_bytes(self.cfg.jute_max_buffer);
        let security = self.peer_security.clone();
        let listener = tokio::spawn(async move {
            match quorum_transport::listen(listen, events, max_message, &security).await {
                Ok(server) => server.await,
                // A deliberate difference: ZooKeeper's follower stops
                // following when the port cannot be bound (`om.start()`
                // throws inside `Follower.followLeader`), and so leaves the
                // quorum until the port is free. zab keeps following and
                // hosts nobody: a voter counts for more than its observers,
                // which move on to the next voter.
                Err(e) => {
                    tracing::error!(%listen, error = %e, "cannot listen for observers; following without hosting them")
                }
            }
        });
        tracing::info!(%listen, %epoch, %last_applied, "hosting observers");
        if let Role::Learning(l) = &mut self.role {
            l.observers = Some(Box::new(HostedObservers {
                master,
                links: HashMap::new(),
                listener,
            }));
        }
    }

    fn hosted(&mut self) -> Option<&mut HostedObservers> {
        match &mut self.role {
            Role::Learning(l) => l.observers.as_deref_mut(),
            _ => None,
        }
    }

    /// A link event on the observer master's port.
    pub(super) fn on_observer_link(&mut self, event: LinkEvent) {
        // DIFF or SNAP weighs against the newest snapshot as it is when
        // the observer syncs, as for the leader's learners: read once per
        // link, not per batch of packets.
        let snapshot_size =
            matches!(event, LinkEvent::Opened { .. }).then(|| newest_snapshot_size(&self.store));
        let Some(h) = self.hosted() else {
            return;
        };
        let actions = match event {
            LinkEvent::Opened {
                link,
                out,
                remote,
                keep,
            } => {
                if let Some(size) = snapshot_size {
                    h.master.set_snapshot_size(size);
                }
                h.links.insert(link, LearnerLink::new(out, remote, keep));
                h.master.on_connected(ConnId(link.0));
                Vec::new()
            }
            LinkEvent::Packets { link, packets } => {
                if let Some(counted) = h.links.get_mut(&link) {
                    counted.received(&packets);
                }
                let mut actions = Vec::new();
                for packet in packets {
                    actions.extend(h.master.on_packet(ConnId(link.0), packet));
                }
                actions
            }
            LinkEvent::Closed { link } => {
                h.links.remove(&link);
                h.master.on_disconnected(ConnId(link.0));
                Vec::new()
            }
        };
        self.observer_master_actions(actions);
    }

    /// A txn the follower applied, for its observers.
    pub(super) fn inform_observers(&mut self, txn: &Txn) {
        let Some(h) = self.hosted() else {
            return;
        };
        let actions = h
            .master
            .on_committed(zab_wire::Zxid(txn.zxid), Bytes::from(txn.encode_to_vec()));
        self.observer_master_actions(actions);
    }

    /// The leader answered a request the follower relayed for an observer.
    pub(super) fn answer_observer(&mut self, packet: QuorumPacket) {
        let Some(h) = self.hosted() else {
            tracing::warn!(
                kind = packet.r#type,
                "an answer from the leader to no request of this server's"
            );
            return;
        };
        let actions = h.master.on_leader_reply(packet);
        self.observer_master_actions(actions);
    }

    pub(super) fn observers_tick(&mut self, now: u64) {
        if let Some(h) = self.hosted() {
            let actions = h.master.on_tick(now);
            self.observer_master_actions(actions);
        }
    }

    fn observer_master_actions(&mut self, actions: Vec<ObserverMasterAction>) {
        for a in actions {
            let snapshot = matches!(a, ObserverMasterAction::SendSnapshot { .. }).then(|| {
                let tree = self.state.tree();
                (tree.last_zxid(), tree.snapshot(), self.tx.clone(), self.gen)
            });
            let Role::Learning(l) = &mut self.role else {
                return;
            };
            let Some(h) = l.observers.as_deref_mut() else {
                return;
            };
            let mut to_leader = Vec::new();
            match a {
                ObserverMasterAction::Send { conn, packet } => {
                    if crate::status::is_diff_sync(&packet) {
                        self.provider.diff_count += 1;
                    }
                    if let Some(link) = h.links.get_mut(&LinkId(conn.0)) {
                        link.send(packet);
                    }
                }
                ObserverMasterAction::SendSnapshot { conn, zxid } => {
                    let id = LinkId(conn.0);
                    let Some((at, snap, tx, gen)) = snapshot else {
                        continue;
                    };
                    // As for the leader's: the tree must hold exactly the
                    // txns up to `zxid`, or the observer would install it
                    // under the wrong zxid. Drop the link instead.
                    if at != zxid {
                        tracing::error!(conn = conn.0, %at, %zxid, "the tree is not at the SNAP's zxid; not sending a snapshot");
                        h.links.remove(&id);
                        h.master.on_disconnected(conn);
                        continue;
                    }
                    self.provider.snap_count += 1;
                    if let Some(link) = h.links.get_mut(&id) {
                        stream_snapshot(link, id, zxid, snap, tx, gen);
                    }
                }
                ObserverMasterAction::ToLeader(packet) => {
                    if let Some(learner) = l.learner.as_mut() {
                        to_leader = learner.relay(packet);
                    }
                }
                ObserverMasterAction::TouchSessions(sessions) => {
                    if let Some(learner) = l.learner.as_mut() {
                        for (session, timeout) in sessions {
                            learner.touch(session, timeout);
                        }
                    }
                }
                ObserverMasterAction::CloseObserver { conn, reason } => {
                    tracing::info!(%conn, reason, "dropping observer");
                    h.links.remove(&LinkId(conn.0));
                }
            }
            self.learner_actions(to_leader);
        }
    }
}
