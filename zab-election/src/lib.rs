//! FastLeaderElection as Apache ZooKeeper runs it (reference G).
//!
//! This crate owns the election: votes and their total order, logical
//! clocks, handling a notification by the sender's state, the termination
//! rule with its finalize wait, and the notification back-off. It knows
//! nothing of the data tree: a server feeds it its last logged zxid and
//! current epoch and gets back a decision.
//!
//! * [`vote`]: [`Vote`], [`Notification`], [`ServerState`] and the total
//!   order [`vote::beats`];
//! * [`election`]: [`Election`], one LOOKING round as a pure state machine
//!   (inputs: notifications and timer ticks with the time passed in;
//!   outputs: [`Output::Send`] and [`Output::Decided`]);
//! * [`responder`]: [`Responder`], what a FOLLOWING / LEADING / OBSERVING
//!   server answers to LOOKING peers;
//!
//! With the `transport` feature (on by default), the async edge too:
//!
//! * [`transport`]: a tonic `Election.Exchange` link per
//!   pair of servers, opened by the higher sid;
//! * [`peer_addr`]: a peer's address as its server line names it,
//!   resolved at every dial;
//! * [`peer_tls`]: TLS between servers (`sslQuorum`), terminated by zab
//!   on the tonic links as on the plain ones;
//! * [`quorum_sasl`]: SASL between servers (`quorum.auth.*`) on a link just
//!   opened, for the election links and the leader ⇄ learner links alike.

pub mod election;
#[cfg(feature = "transport")]
pub mod peer_addr;
#[cfg(feature = "transport")]
pub mod peer_tls;
#[cfg(feature = "transport")]
pub mod quorum_sasl;
pub mod responder;
#[cfg(feature = "transport")]
pub mod transport;
pub mod vote;

pub use election::{Election, Output, FINALIZE_WAIT_MS, MAX_NOTIFICATION_INTERVAL_MS};
pub use responder::Responder;
/// The vocabulary this crate's API speaks (`Zxid`, the jute records, the
/// quorum packets), so a user needs no version of its own to match.
pub use zab_wire;

#[cfg(feature = "transport")]
pub use peer_addr::PeerAddr;
#[cfg(feature = "transport")]
pub use peer_tls::PeerTls;
#[cfg(feature = "transport")]
pub use transport::{ElectionTransport, PeerSecurity, TransportError};
pub use vote::{Notification, NotificationError, ServerState, Vote};
