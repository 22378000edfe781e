//! The codes the `zab-server` process exits with, ZooKeeper's own
//! (`org.apache.zookeeper.server.ExitCode`), so that init scripts,
//! supervisors and alerts written for ZooKeeper tell the same failures
//! apart.
//!
//! A failure at start-up carries its code as `anyhow` context
//! ([`ExitCode::of`] finds it); a failure while running exits at once
//! ([`ExitCode::exit`]), as ZooKeeper's `ServiceUtils.requestSystemExit`.

use std::fmt;

/// Why the process stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Anything not named below: an I/O error on the log or the epochs, a
    /// store that does not restore (1).
    UnexpectedError,
    /// A command line or zoo.cfg the server cannot use (2; ZooKeeper's
    /// INVALID_INVOCATION, which it also uses for a `ConfigException`).
    InvalidInvocation,
    /// The data or log directory cannot be created or written, or holds
    /// what zab must not start on (3; `DatadirException`).
    UnableToAccessDataDir,
    /// A standalone server's admin server did not start (4). A quorum
    /// member serves without it, as ZooKeeper's `QuorumPeer.start` does.
    ErrorStartingAdminServer,
    /// A snapshot could not be written (10; `ZooKeeperServer.takeSnapshot`:
    /// "Severe unrecoverable error, exiting").
    TxnLogErrorTakingSnapshot,
    /// The leader's sync could not be applied: its TRUNC could not be
    /// carried out, or its snapshot does not restore (13; `Learner.
    /// syncWithLeader`: "Not able to truncate the log").
    QuorumPacketError,
    /// The election port could not be bound after retrying (14;
    /// `QuorumCnxManager.Listener`, ZOOKEEPER-3320).
    UnableToBindQuorumPort,
}

impl ExitCode {
    /// The process's exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::UnexpectedError => 1,
            ExitCode::InvalidInvocation => 2,
            ExitCode::UnableToAccessDataDir => 3,
            ExitCode::ErrorStartingAdminServer => 4,
            ExitCode::TxnLogErrorTakingSnapshot => 10,
            ExitCode::QuorumPacketError => 13,
            ExitCode::UnableToBindQuorumPort => 14,
        }
    }

    /// Stops the process now. For failures the running server cannot
    /// recover from; the caller has logged why.
    ///
    /// Not `process::exit`: that runs C++ static destructors, and RocksDB's
    /// default environment joins its background threads in its own, which
    /// never returns if a flush is stuck on the failing disk that brought
    /// the server here; a supervisor would then see a process that neither
    /// serves nor ends. Leaving at once is a crash the store recovers from
    /// (what it acknowledged is synced), and the log lines saying why went
    /// to stderr, which is not buffered.
    pub fn exit(self) -> ! {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: `_exit` ends the process without running anything of it.
        unsafe { libc::_exit(self.code()) }
    }

    /// The code a start-up error carries, [`ExitCode::UnexpectedError`]
    /// if none.
    pub fn of(error: &anyhow::Error) -> ExitCode {
        // anyhow finds a context value under any later context.
        error
            .downcast_ref::<ExitCode>()
            .copied()
            .unwrap_or(ExitCode::UnexpectedError)
    }
}

impl fmt::Display for ExitCode {
    /// The words ZooKeeper prints to stderr for the same failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitCode::UnexpectedError => "Unexpected exception, exiting abnormally",
            ExitCode::InvalidInvocation => "Invalid arguments, exiting abnormally",
            ExitCode::UnableToAccessDataDir => "Unable to access datadir, exiting abnormally",
            ExitCode::ErrorStartingAdminServer => "Unable to start AdminServer, exiting abnormally",
            ExitCode::TxnLogErrorTakingSnapshot => "Severe unrecoverable error, exiting",
            ExitCode::QuorumPacketError => "Cannot apply the leader's sync, exiting",
            ExitCode::UnableToBindQuorumPort => {
                "Unable to bind the election port, exiting abnormally"
            }
        })
    }
}

impl std::error::Error for ExitCode {}

#[cfg(test)]
mod tests {
    use super::ExitCode;
    use anyhow::Context as _;

    #[test]
    fn a_start_up_error_carries_its_code_through_more_context() {
        let e = Err::<(), _>(std::io::Error::other("permission denied"))
            .context(ExitCode::UnableToAccessDataDir)
            .context("opening the store")
            .unwrap_err();
        assert_eq!(ExitCode::of(&e), ExitCode::UnableToAccessDataDir);
        assert_eq!(ExitCode::of(&e).code(), 3);
        let plain = anyhow::anyhow!("something else");
        assert_eq!(ExitCode::of(&plain), ExitCode::UnexpectedError);
    }

    #[test]
    fn the_codes_are_zookeepers() {
        let codes: Vec<i32> = [
            ExitCode::UnexpectedError,
            ExitCode::InvalidInvocation,
            ExitCode::UnableToAccessDataDir,
            ExitCode::ErrorStartingAdminServer,
            ExitCode::TxnLogErrorTakingSnapshot,
            ExitCode::QuorumPacketError,
            ExitCode::UnableToBindQuorumPort,
        ]
        .iter()
        .map(|c| c.code())
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 10, 13, 14]);
    }
}
