//! The async edge of SASL between servers (`quorum.auth.*`): runs
//! `zab_wire::quorum_auth`'s steps over a link just opened, for the election
//! links here and the leader ⇄ learner links in zab-server alike. Each
//! transport says how one step goes out and comes in on its own stream
//! ([`Steps`]).
//!
//! Both sides are bounded by [`HANDSHAKE_TIMEOUT`], as ZooKeeper's are by
//! the socket's read timeout: a peer that stops half-way cannot hold a
//! link's slot.

use std::future::Future;
use std::time::Duration;

use zab_wire::proto;
use zab_wire::quorum_auth::{
    Credentials, LearnerHandshake, LearnerOutcome, ServerHandshake, ServerOutcome,
};

/// Longest an exchange may take, either side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A link's stream, as far as the exchange is concerned.
pub trait Steps: Send {
    /// Queues one step to the other side.
    fn send(&mut self, step: proto::QuorumAuth) -> Result<(), String>;
    /// The other side's next step; anything else on the link is an error.
    fn recv(&mut self) -> impl Future<Output = Result<proto::QuorumAuth, String>> + Send;
}

/// The opener's side: authenticates as `credentials` on `link`. `Err`
/// says why the link must close.
pub async fn authenticate(credentials: &Credentials, link: &mut impl Steps) -> Result<(), String> {
    let run = async {
        let (mut handshake, first) = LearnerHandshake::start(credentials);
        link.send(first)?;
        loop {
            let msg = link.recv().await?;
            match handshake.on_message(&msg) {
                LearnerOutcome::Send(next) => link.send(next)?,
                LearnerOutcome::Authenticated => return Ok(()),
                LearnerOutcome::Failed(why) => return Err(why),
            }
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| Err("no answer within the SASL time limit".into()))
}

/// How an opener's exchange ended, on the listening side.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The authenticated user, or why the opener failed.
    pub result: Result<String, String>,
    /// Whether the link goes on (an opener that failed is let through when
    /// SASL is not required, as ZooKeeper does).
    pub keep: bool,
}

/// The listener's side: answers the opener's steps on `link` until the
/// exchange is over.
pub async fn admit(mut handshake: ServerHandshake, link: &mut impl Steps) -> Verdict {
    let run = async {
        loop {
            let msg = link.recv().await?;
            match handshake.on_message(&msg) {
                ServerOutcome::Continue(reply) => link.send(reply)?,
                ServerOutcome::Done {
                    reply,
                    verdict,
                    keep,
                } => {
                    link.send(reply)?;
                    return Ok(Verdict {
                        result: verdict,
                        keep,
                    });
                }
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, run).await {
        Ok(Ok(verdict)) => verdict,
        // The link broke or stalled mid-exchange: nothing to go on with.
        Ok(Err(why)) => Verdict {
            result: Err(why),
            keep: false,
        },
        Err(_) => Verdict {
            result: Err("no SASL step within the time limit".into()),
            keep: false,
        },
    }
}
