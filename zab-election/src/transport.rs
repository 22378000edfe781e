//! The election transport: notifications between servers over tonic
//! (`Election.Exchange`, one bidirectional stream per pair of servers).
//!
//! This is the async edge around the pure core; it only moves
//! notifications. Rules kept from ZooKeeper's `QuorumCnxManager`
//! (reference G, "Connections"):
//!
//! * **One link per pair, opened by the higher sid.** The higher sid dials
//!   the lower one and keeps redialling with back-off while the peer is
//!   unreachable. A lower sid that has something to say to a higher one and
//!   no link uses ZooKeeper's trick: it opens a stream that the higher side
//!   closes at once, and the higher side dials back straight away.
//! * **Only the latest message counts.** Each peer has a send queue of one:
//!   a newer notification replaces one not yet sent (`SEND_CAPACITY` 1).
//! * **Re-send on (re)connect.** When a link starts with nothing queued, the
//!   last message sent to that peer is sent again, since it may have been
//!   lost with the old link.
//!
//! The dialler names itself in the `zab-sid` request header; the sender of
//! every notification received on a link is taken from the link, not from
//! the message.
//!
//! Under `quorum.auth.*` the dialler is the SASL client and the listener the
//! SASL server ([`crate::quorum_sasl`]): the exchange runs before anything
//! else on the link, dial-back requests included, as ZooKeeper's
//! `QuorumCnxManager` authenticates every connection before it looks at
//! which side should keep it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};
use zab_wire::proto;
use zab_wire::proto::election_client::ElectionClient;
use zab_wire::proto::election_server::{Election as ElectionService, ElectionServer};
use zab_wire::quorum_auth::{self, Admission, QuorumSasl};
use zab_wire::ServerId;

use crate::peer_addr::PeerAddr;
use crate::peer_tls::PeerTls;
use crate::vote::Notification;

/// The request header in which the dialling server names itself.
const SID_HEADER: &str = "zab-sid";
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Minimum gap between two dial-back requests to the same higher peer.
const HELLO_GAP: Duration = Duration::from_millis(100);
/// Received notifications waiting for the election.
const INBOUND_CAPACITY: usize = 1024;

/// Why the transport could not start.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the listener's address: {0}")]
    LocalAddr(std::io::Error),
}

/// Why one attempt to open a link failed (logged, then retried).
#[derive(Debug, Error)]
enum DialError {
    #[error("cannot resolve the peer's address: {0}")]
    Resolve(std::io::Error),
    #[error("bad endpoint: {0}")]
    Endpoint(#[from] tonic::transport::Error),
    #[error("exchange refused: {0}")]
    Status(#[from] Status),
    #[error("SASL authentication failed: {0}")]
    Auth(String),
}

#[derive(Debug, Default)]
struct LinkState {
    /// Incremented for every link that starts; identifies the live one.
    session: u64,
    active: bool,
    /// A link has been up at some time since this transport started.
    ever_active: bool,
    pending: Option<Notification>,
    last_sent: Option<Notification>,
    last_hello: Option<Instant>,
}

struct Link {
    peer: ServerId,
    addr: PeerAddr,
    state: Mutex<LinkState>,
    /// A message was queued, or the live session changed.
    wake: Notify,
    /// The peer asked us to dial it now (dial-back).
    dial_now: Notify,
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        // A poisoned lock only means a panic elsewhere; the state is plain
        // data and stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A link (re)starts: it supersedes any older one and, if nothing is
    /// queued, re-sends the last message (reference G).
    fn begin(&self) -> u64 {
        let session = {
            let mut st = self.lock();
            st.session += 1;
            st.active = true;
            st.ever_active = true;
            if st.pending.is_none() {
                st.pending = st.last_sent;
            }
            st.session
        };
        self.wake.notify_waiters();
        session
    }

    fn end(&self, session: u64) {
        let mut st = self.lock();
        if st.session == session {
            st.active = false;
        }
    }

    /// The next message for link `session`, or `None` once a newer link
    /// has replaced it.
    async fn next_pending(&self, session: u64) -> Option<Notification> {
        loop {
            let woken = self.wake.notified();
            {
                let mut st = self.lock();
                if st.session != session {
                    return None;
                }
                if let Some(n) = st.pending.take() {
                    st.last_sent = Some(n);
                    return Some(n);
                }
            }
            woken.await;
        }
    }
}

struct Shared {
    me: ServerId,
    links: BTreeMap<ServerId, Arc<Link>>,
    inbound: mpsc::Sender<Notification>,
    runtime: tokio::runtime::Handle,
    security: PeerSecurity,
}

/// How a server secures its links to the others, the election links and
/// the leader ⇄ learner links alike: TLS (`sslQuorum`) and SASL
/// (`quorum.auth.*`, present when `quorum.auth.enableSasl=true`).
#[derive(Clone, Debug, Default)]
pub struct PeerSecurity {
    /// `sslQuorum`: the links this server opens are TLS, and so must be
    /// those opened to it, unless `unified`.
    pub tls: Option<PeerTls>,
    /// Quorum `portUnification` (with the `ssl.quorum.*` stores): links
    /// opened to this server may be TLS, with this, or plain, whatever
    /// `tls` is. ZooKeeper's step between plain and TLS quorums in a
    /// rolling restart (`UnifiedServerSocket`).
    pub unified: Option<PeerTls>,
    pub sasl: Option<Arc<QuorumSasl>>,
}

impl PeerSecurity {
    /// The TLS of links opened to this server, if it takes TLS ones.
    pub fn accepting_tls(&self) -> Option<&PeerTls> {
        self.tls.as_ref().or(self.unified.as_ref())
    }

    /// Whether this server takes links opened to it without TLS.
    pub fn takes_plain(&self) -> bool {
        self.tls.is_none() || self.unified.is_some()
    }

    /// The mechanism this server authenticates with when it opens a link,
    /// if it does (`quorum.auth.learnerRequireSasl`).
    pub fn opener_mechanism(&self) -> Option<&'static str> {
        self.sasl.as_ref().and_then(|s| s.opener_mechanism())
    }

    /// Says in `request`'s headers that its opener will authenticate, and
    /// how, if this server does.
    pub fn mark<T>(&self, request: &mut Request<T>) {
        if let Some(mechanism) = self.opener_mechanism() {
            request.metadata_mut().insert(
                quorum_auth::HEADER,
                tonic::metadata::MetadataValue::from_static(mechanism),
            );
        }
    }

    /// How a link opened to this server with `request` begins.
    pub fn admit<T>(&self, request: &Request<T>) -> Admission {
        let asks = request
            .metadata()
            .get(quorum_auth::HEADER)
            .map(|m| m.to_str().unwrap_or("(not text)"));
        quorum_auth::admit(self.sasl.as_ref(), asks)
    }

    /// Authenticates a link this server opened to `peer`, if this server
    /// authenticates its links. `Err` says why the link must close.
    pub async fn authenticate(
        &self,
        peer: ServerId,
        link: &mut impl crate::quorum_sasl::Steps,
    ) -> Result<(), String> {
        match &self.sasl {
            Some(sasl) if sasl.learner.is_some() => {
                crate::quorum_sasl::authenticate(sasl.clone(), peer, link).await
            }
            _ => Ok(()),
        }
    }
}

/// A running election transport. Dropping it stops its tasks.
pub struct ElectionTransport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl ElectionTransport {
    /// Listens on `listen` and links to every peer in `peers` (which may
    /// include `me`; it is skipped). Received notifications come out of the
    /// returned receiver.
    pub async fn start<A: Into<PeerAddr>>(
        me: ServerId,
        listen: SocketAddr,
        peers: BTreeMap<ServerId, A>,
        security: PeerSecurity,
    ) -> Result<(ElectionTransport, mpsc::Receiver<Notification>), TransportError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| TransportError::Bind {
                addr: listen,
                source,
            })?;
        ElectionTransport::start_secured(me, listener, peers, security)
    }

    /// [`ElectionTransport::start`] on a listener the caller already bound,
    /// without TLS or SASL.
    pub fn start_with_listener<A: Into<PeerAddr>>(
        me: ServerId,
        listener: TcpListener,
        peers: BTreeMap<ServerId, A>,
    ) -> Result<(ElectionTransport, mpsc::Receiver<Notification>), TransportError> {
        ElectionTransport::start_secured(me, listener, peers, PeerSecurity::default())
    }

    /// [`ElectionTransport::start_with_listener`], secured as `security`
    /// says.
    pub fn start_secured<A: Into<PeerAddr>>(
        me: ServerId,
        listener: TcpListener,
        peers: BTreeMap<ServerId, A>,
        security: PeerSecurity,
    ) -> Result<(ElectionTransport, mpsc::Receiver<Notification>), TransportError> {
        let local_addr = listener.local_addr().map_err(TransportError::LocalAddr)?;
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let links = peers
            .into_iter()
            .filter(|(id, _)| *id != me)
            .map(|(peer, addr)| {
                let link = Link {
                    peer,
                    addr: addr.into(),
                    state: Mutex::new(LinkState::default()),
                    wake: Notify::new(),
                    dial_now: Notify::new(),
                };
                (peer, Arc::new(link))
            })
            .collect();
        let shared = Arc::new(Shared {
            me,
            links,
            inbound: tx,
            runtime: tokio::runtime::Handle::current(),
            security,
        });
        let mut tasks = Vec::new();
        let service = ElectionServer::new(Service {
            shared: shared.clone(),
        });
        let (tls, plain_too) = (
            shared.security.accepting_tls().cloned(),
            shared.security.takes_plain(),
        );
        tasks.push(tokio::spawn(async move {
            // `serve_with_incoming` does not apply the builder's socket
            // options: ask for TCP_NODELAY here, as the dialing side does.
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let router = Server::builder().add_service(service);
            let served = match &tls {
                None => router.serve_with_incoming(incoming).await,
                Some(tls) => {
                    router
                        .serve_with_incoming(tls.accept(incoming, plain_too))
                        .await
                }
            };
            if let Err(e) = served {
                warn!(sid = %me, "election listener stopped: {e}");
            }
        }));
        for link in shared.links.values() {
            if link.peer < me {
                tasks.push(tokio::spawn(dial_loop(shared.clone(), link.clone())));
            }
        }
        Ok((
            ElectionTransport {
                shared,
                local_addr,
                tasks,
            },
            rx,
        ))
    }

    /// The address the transport listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether a link to `to` is up right now.
    pub fn is_linked(&self, to: ServerId) -> bool {
        self.shared.links.get(&to).is_some_and(|l| l.lock().active)
    }

    /// Whether `to` may still send us a vote: a link to it is up, or none
    /// has been up since this transport started. A peer we have never
    /// heard from may be starting at the same moment as we are (a cluster
    /// started all at once), so only a peer whose link was up and went
    /// down (a server that died) counts as gone; this is what
    /// [`crate::Election::decide_if_all_reachable_agree`] asks.
    pub fn may_still_vote(&self, to: ServerId) -> bool {
        self.shared.links.get(&to).is_some_and(|l| {
            let st = l.lock();
            st.active || !st.ever_active
        })
    }

    /// Queues `n` for `to`, replacing any notification not yet sent to it.
    /// Unknown peers are ignored.
    pub fn send(&self, to: ServerId, n: Notification) {
        let Some(link) = self.shared.links.get(&to) else {
            debug!(sid = %self.shared.me, peer = %to, "no such election peer");
            return;
        };
        let hello = {
            let mut st = link.lock();
            st.pending = Some(n);
            let due = st.last_hello.is_none_or(|t| t.elapsed() >= HELLO_GAP);
            let hello = !st.active && to > self.shared.me && due;
            if hello {
                st.last_hello = Some(Instant::now());
            }
            hello
        };
        link.wake.notify_waiters();
        if hello {
            // Ask the higher peer to dial us: it closes this stream and
            // dials back.
            let (me, addr, security) = (
                self.shared.me,
                link.addr.clone(),
                self.shared.security.clone(),
            );
            self.shared.runtime.spawn(async move {
                if let Err(e) = open(to, &addr, me, &security).await {
                    debug!(sid = %me, peer = %to, "dial-back request failed: {e}");
                }
            });
        }
    }
}

impl Drop for ElectionTransport {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Dials a lower peer, and again whenever the link drops, with back-off.
async fn dial_loop(shared: Arc<Shared>, link: Arc<Link>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match open(link.peer, &link.addr, shared.me, &shared.security).await {
            Ok((out, inbound)) => {
                backoff = MIN_BACKOFF;
                run_session(&shared, &link, out, inbound).await;
            }
            // An operator's mistake (credentials that do not match), not
            // a peer that is down: worth saying each time.
            Err(e @ DialError::Auth(_)) => warn!(sid = %shared.me, peer = %link.peer, "{e}"),
            Err(e) => debug!(sid = %shared.me, peer = %link.peer, "dial failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = link.dial_now.notified() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens an `Exchange` stream to `peer` at `addr` (resolved now), naming
/// ourselves as `me`, and authenticates on it if this server does.
async fn open(
    peer: ServerId,
    addr: &PeerAddr,
    me: ServerId,
    security: &PeerSecurity,
) -> Result<
    (
        mpsc::Sender<proto::Notification>,
        Streaming<proto::Notification>,
    ),
    DialError,
> {
    let host = &addr.host;
    let addr = addr.resolve().await.map_err(DialError::Resolve)?;
    let channel: Channel =
        PeerTls::connect(security.tls.as_ref(), host, addr, CONNECT_TIMEOUT).await?;
    let (tx, rx) = mpsc::channel(16);
    let mut req = Request::new(ReceiverStream::new(rx));
    req.metadata_mut()
        .insert(SID_HEADER, tonic::metadata::MetadataValue::from(me.0));
    security.mark(&mut req);
    let mut inbound = ElectionClient::new(channel)
        .exchange(req)
        .await?
        .into_inner();
    let mut steps = ElectionSteps {
        tx: &tx,
        inbound: &mut inbound,
    };
    security
        .authenticate(peer, &mut steps)
        .await
        .map_err(DialError::Auth)?;
    Ok((tx, inbound))
}

/// An election link during its SASL exchange: the steps travel as
/// notifications with only `auth` set.
struct ElectionSteps<'a> {
    tx: &'a mpsc::Sender<proto::Notification>,
    inbound: &'a mut Streaming<proto::Notification>,
}

impl crate::quorum_sasl::Steps for ElectionSteps<'_> {
    fn send(&mut self, step: proto::QuorumAuth) -> Result<(), String> {
        let n = proto::Notification {
            auth: Some(step),
            ..Default::default()
        };
        // The link's queue is fresh: a step never waits for room.
        self.tx.try_send(n).map_err(|e| format!("link closed: {e}"))
    }

    async fn recv(&mut self) -> Result<proto::QuorumAuth, String> {
        match self.inbound.message().await {
            Ok(Some(n)) => n
                .auth
                .ok_or_else(|| "a notification before the SASL exchange ended".into()),
            Ok(None) => Err("the link closed during the SASL exchange".into()),
            Err(status) => Err(format!("{}: {}", status.code(), status.message())),
        }
    }
}

/// Moves notifications both ways on one link until it drops or a newer
/// link to the same peer replaces it.
async fn run_session(
    shared: &Shared,
    link: &Link,
    out: mpsc::Sender<proto::Notification>,
    mut inbound: Streaming<proto::Notification>,
) {
    let session = link.begin();
    debug!(sid = %shared.me, peer = %link.peer, session, "election link up");
    loop {
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(p)) => match Notification::try_from(p) {
                    Ok(mut n) => {
                        n.sender = link.peer;
                        if shared.inbound.send(n).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => warn!(sid = %shared.me, peer = %link.peer, "dropped: {e}"),
                },
                Ok(None) => break,
                Err(e) => {
                    debug!(sid = %shared.me, peer = %link.peer, "link error: {e}");
                    break;
                }
            },
            next = link.next_pending(session) => match next {
                Some(n) => {
                    if out.send(n.into()).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    link.end(session);
    debug!(sid = %shared.me, peer = %link.peer, session, "election link down");
}

struct Service {
    shared: Arc<Shared>,
}

type NotificationStream = Pin<Box<dyn Stream<Item = Result<proto::Notification, Status>> + Send>>;

#[tonic::async_trait]
impl ElectionService for Service {
    type ExchangeStream = NotificationStream;

    async fn exchange(
        &self,
        request: Request<Streaming<proto::Notification>>,
    ) -> Result<Response<Self::ExchangeStream>, Status> {
        let sid = request
            .metadata()
            .get(SID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok())
            .map(ServerId)
            .ok_or_else(|| Status::invalid_argument("missing or bad zab-sid header"))?;
        let Some(link) = self.shared.links.get(&sid).cloned() else {
            return Err(Status::permission_denied(format!("{sid} is not a peer")));
        };
        let handshake = match self.shared.security.admit(&request) {
            Admission::Open => None,
            Admission::Refuse(why) => {
                warn!(sid = %self.shared.me, peer = %sid, "election link refused: {why}");
                return Err(Status::unauthenticated(why));
            }
            Admission::Authenticate(h) => Some(h),
        };
        if let Some(handshake) = handshake {
            // The exchange answers on the response stream, so the response
            // goes back first and the rest of the link waits for the verdict.
            let (tx, rx) = mpsc::channel(16);
            let shared = self.shared.clone();
            let mut inbound = request.into_inner();
            tokio::spawn(async move {
                let mut steps = ElectionSteps {
                    tx: &tx,
                    inbound: &mut inbound,
                };
                let verdict = crate::quorum_sasl::admit(handshake, &mut steps).await;
                match &verdict.result {
                    Ok(user) => {
                        info!(sid = %shared.me, peer = %sid, user, "election peer authenticated")
                    }
                    Err(why) => warn!(
                        sid = %shared.me, peer = %sid, keep = verdict.keep,
                        "election peer failed SASL authentication: {why}"
                    ),
                }
                if !verdict.keep {
                    return;
                }
                if sid < shared.me {
                    link.dial_now.notify_one();
                    return;
                }
                run_session(&shared, &link, tx, inbound).await;
            });
            let stream: NotificationStream = Box::pin(ReceiverStream::new(rx).map(Ok));
            return Ok(Response::new(stream));
        }
        if sid < self.shared.me {
            // A lower sid may not keep a link to us: close it and dial back.
            link.dial_now.notify_one();
            let empty: NotificationStream = Box::pin(tokio_stream::empty());
            return Ok(Response::new(empty));
        }
        let (tx, rx) = mpsc::channel(16);
        let shared = self.shared.clone();
        let inbound = request.into_inner();
        tokio::spawn(async move { run_session(&shared, &link, tx, inbound).await });
        let stream: NotificationStream = Box::pin(ReceiverStream::new(rx).map(Ok));
        Ok(Response::new(stream))
    }
}
