//! The leader ⇄ learner link: one tonic bidirectional stream per learner
//! (`QuorumPeer.Learn`, opened by the learner on the leader's quorum port).
//! Packets queued while the previous batch was being written go out
//! together as one `QuorumBatch` (batching on the wire, as SOFAJRaft's
//! replicator does; seed 003). Only bytes move here: the protocol is in
//! `zab-leader` and `zab-learner`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use zab_wire::proto::quorum_peer_client::QuorumPeerClient;
use zab_wire::proto::quorum_peer_server::{QuorumPeer, QuorumPeerServer};
use zab_wire::proto::{QuorumBatch, QuorumPacket};

/// Most packets in one batch: bounds a batch's size and its latency.
const MAX_BATCH: usize = 1024;

/// One learner connection on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// What the leader's listener reports.
#[derive(Debug)]
pub enum LinkEvent {
    Opened {
        link: LinkId,
        remote: Option<SocketAddr>,
        out: mpsc::UnboundedSender<QuorumPacket>,
    },
    Packet {
        link: LinkId,
        packet: QuorumPacket,
    },
    Closed {
        link: LinkId,
    },
}

struct Service {
    events: mpsc::UnboundedSender<LinkEvent>,
    next: Arc<AtomicU64>,
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<QuorumBatch, Status>> + Send>>;

#[tonic::async_trait]
impl QuorumPeer for Service {
    type LearnStream = BatchStream;

    async fn learn(
        &self,
        request: Request<Streaming<QuorumBatch>>,
    ) -> Result<Response<Self::LearnStream>, Status> {
        let link = LinkId(self.next.fetch_add(1, Ordering::Relaxed));
        let remote = request.remote_addr();
        let mut inbound = request.into_inner();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        if self
            .events
            .send(LinkEvent::Opened {
                link,
                remote,
                out: out_tx,
            })
            .is_err()
        {
            return Err(Status::unavailable("not leading"));
        }
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(Ok(batch)) = inbound.next().await {
                for packet in batch.packets {
                    if events.send(LinkEvent::Packet { link, packet }).is_err() {
                        return;
                    }
                }
            }
            let _ = events.send(LinkEvent::Closed { link });
        });
        Ok(Response::new(Box::pin(batches(out_rx).map(Ok))))
    }
}

/// Groups whatever is queued into batches: the first packet waits for
/// nothing, the rest of its batch is what queued up meanwhile.
fn batches(mut rx: mpsc::UnboundedReceiver<QuorumPacket>) -> impl Stream<Item = QuorumBatch> {
    let (tx, batched) = mpsc::channel::<QuorumBatch>(4);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut packets = vec![first];
            while packets.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => packets.push(p),
                    Err(_) => break,
                }
            }
            if tx.send(QuorumBatch { packets }).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(batched)
}

/// Binds `addr` and returns the server: it serves learners for as long as
/// the returned future is polled, and dropping it closes the listener (so a
/// leader that steps down frees its quorum port).
pub async fn listen(
    addr: SocketAddr,
    events: mpsc::UnboundedSender<LinkEvent>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let service = Service {
        events,
        next: Arc::new(AtomicU64::new(1)),
    };
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(QuorumPeerServer::new(service))
        .serve_with_incoming(incoming);
    Ok(async move {
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "quorum listener stopped");
        }
    })
}

/// A learner's link to its leader: send packets with `out`, receive with
/// `inbound` (it ends when the link breaks).
pub struct LeaderLink {
    pub out: mpsc::UnboundedSender<QuorumPacket>,
    pub inbound: mpsc::UnboundedReceiver<QuorumPacket>,
}

/// Opens the stream to the leader at `addr`, within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> anyhow::Result<LeaderLink> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    let channel = tokio::time::timeout(timeout, endpoint.connect()).await??;
    let mut client = QuorumPeerClient::new(channel);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let response = tokio::time::timeout(timeout, client.learn(batches(out_rx))).await??;
    let mut stream = response.into_inner();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(batch)) = stream.next().await {
            for packet in batch.packets {
                if in_tx.send(packet).is_err() {
                    return;
                }
            }
        }
    });
    Ok(LeaderLink {
        out: out_tx,
        inbound: in_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::proto::PacketType;

    fn packet(t: PacketType, zxid: i64) -> QuorumPacket {
        QuorumPacket {
            r#type: t as i32,
            zxid,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn packets_flow_both_ways_in_order() {
        let (tx, mut events) = mpsc::unbounded_channel();
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let server = tokio::spawn(listen(addr, tx).await.unwrap());
        let mut link = connect(addr, Duration::from_secs(5)).await.unwrap();
        for z in 1..=500 {
            link.out.send(packet(PacketType::Ack, z)).unwrap();
        }
        let out = match events.recv().await {
            Some(LinkEvent::Opened { out, .. }) => out,
            other => panic!("{other:?}"),
        };
        for z in 1..=500 {
            match events.recv().await {
                Some(LinkEvent::Packet { packet, .. }) => assert_eq!(packet.zxid, z),
                other => panic!("{other:?}"),
            }
        }
        for z in 1..=500 {
            out.send(packet(PacketType::Commit, z)).unwrap();
        }
        for z in 1..=500 {
            assert_eq!(link.inbound.recv().await.unwrap().zxid, z);
        }
        drop(link);
        loop {
            match events.recv().await {
                Some(LinkEvent::Closed { .. }) | None => break,
                _ => {}
            }
        }
        server.abort();
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_server_frees_the_port() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let (tx, _events) = mpsc::unbounded_channel();
        let task = tokio::spawn(listen(addr, tx.clone()).await.unwrap());
        task.abort();
        let _ = task.await;
        // A leader that steps down and wins again binds the same port.
        let again = listen(addr, tx).await;
        assert!(
            again.is_ok(),
            "the quorum port is still bound after the server was dropped"
        );
    }
}
