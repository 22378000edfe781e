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
use std::sync::Arc;
use std::time::Duration;

use zab_wire::proto;
use zab_wire::quorum_auth::{
    LearnerHandshake, LearnerOutcome, QuorumSasl, ServerHandshake, ServerOutcome,
};
use zab_wire::ServerId;

/// Longest an exchange may take, either side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A link's stream, as far as the exchange is concerned.
pub trait Steps: Send {
    /// Queues one step to the other side.
    fn send(&mut self, step: proto::QuorumAuth) -> Result<(), String>;
    /// The other side's next step; anything else on the link is an error.
    fn recv(&mut self) -> impl Future<Output = Result<proto::QuorumAuth, String>> + Send;
}

/// Runs one step of an exchange off the runtime: a Kerberos step may
/// read a keytab or ask the KDC for a ticket, and a server's runtime has
/// one thread that must not wait for that. Exchanges run only when links
/// open, so the hand-off costs nothing that matters.
async fn off_runtime<T: Send + 'static>(
    step: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|e| format!("SASL step: {e}"))
}

/// One message through either side's `handshake`, off the runtime.
async fn step<H: Send + 'static, O: Send + 'static>(
    mut handshake: H,
    msg: proto::QuorumAuth,
    on_message: fn(&mut H, &proto::QuorumAuth) -> O,
) -> Result<(H, O), String> {
    off_runtime(move || {
        let outcome = on_message(&mut handshake, &msg);
        (handshake, outcome)
    })
    .await
}

/// The opener's side: authenticates with `sasl`'s learner login on `link`,
/// a link to server `peer`. `Err` says why the link must close.
pub async fn authenticate(
    sasl: Arc<QuorumSasl>,
    peer: ServerId,
    link: &mut impl Steps,
) -> Result<(), String> {
    let run = async {
        let (mut handshake, first) =
            off_runtime(move || LearnerHandshake::start(&sasl, peer)).await??;
        link.send(first)?;
        loop {
            let msg = link.recv().await?;
            let outcome;
            (handshake, outcome) = step(handshake, msg, LearnerHandshake::on_message).await?;
            match outcome {
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
            let outcome;
            (handshake, outcome) = step(handshake, msg, ServerHandshake::on_message).await?;
            match outcome {
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
