//! Start-up rules for `currentEpoch` and `acceptedEpoch` (reference F.7,
//! ZooKeeper's `QuorumPeer.loadDataBase`).
//!
//! Pure: [`recover`] takes what is stored and the last processed zxid of
//! the loaded database, and returns the epochs to run with plus which of
//! them must be written back; [`crate::Store::recover_epochs`] does the I/O.

use zab_wire::{Epoch, Zxid};

/// The two epochs a server runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epochs {
    /// The epoch whose history this server adopted (its vote's `peerEpoch`).
    pub current: Epoch,
    /// The epoch this server promised to a leader.
    pub accepted: Epoch,
}

/// Why the stored epochs cannot be trusted; ZooKeeper refuses to start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error("the current epoch {current} is older than the last zxid {last_zxid}")]
    CurrentBehindData { current: Epoch, last_zxid: Zxid },
    #[error("the accepted epoch {accepted} is less than the current epoch {current}")]
    AcceptedBehindCurrent { accepted: Epoch, current: Epoch },
}

/// What start-up must persist: missing epochs are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub epochs: Epochs,
    pub write_current: bool,
    pub write_accepted: bool,
}

/// ZooKeeper's rules: a missing epoch is the epoch of the last processed
/// zxid; data newer than `currentEpoch` means an epoch update was lost
/// (ZooKeeper would look for `currentEpoch.tmp`; zab writes epochs
/// atomically, so there is nothing to fall back to); `acceptedEpoch` below
/// `currentEpoch` is impossible in a correct history.
pub(crate) fn recover(
    current: Option<Epoch>,
    accepted: Option<Epoch>,
    last_processed: Zxid,
) -> Result<Recovered, EpochError> {
    let of_data = last_processed.epoch();
    let current_value = current.unwrap_or(of_data);
    if of_data > current_value {
        return Err(EpochError::CurrentBehindData {
            current: current_value,
            last_zxid: last_processed,
        });
    }
    let accepted_value = accepted.unwrap_or(of_data);
    if accepted_value < current_value {
        return Err(EpochError::AcceptedBehindCurrent {
            accepted: accepted_value,
            current: current_value,
        });
    }
    Ok(Recovered {
        epochs: Epochs {
            current: current_value,
            accepted: accepted_value,
        },
        write_current: current.is_none(),
        write_accepted: accepted.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_server_starts_from_its_data() {
        let r = recover(None, None, Zxid::new(Epoch(3), 9)).unwrap();
        assert_eq!(
            r.epochs,
            Epochs {
                current: Epoch(3),
                accepted: Epoch(3)
            }
        );
        assert!(r.write_current && r.write_accepted);
        let r = recover(None, None, Zxid::ZERO).unwrap();
        assert_eq!(r.epochs.current, Epoch(0));
    }

    #[test]
    fn stored_epochs_win_when_consistent() {
        let r = recover(Some(Epoch(4)), Some(Epoch(5)), Zxid::new(Epoch(3), 1)).unwrap();
        assert_eq!(
            r.epochs,
            Epochs {
                current: Epoch(4),
                accepted: Epoch(5)
            }
        );
        assert!(!r.write_current && !r.write_accepted);
    }

    #[test]
    fn data_newer_than_current_epoch_is_refused() {
        assert_eq!(
            recover(Some(Epoch(2)), Some(Epoch(3)), Zxid::new(Epoch(3), 1)),
            Err(EpochError::CurrentBehindData {
                current: Epoch(2),
                last_zxid: Zxid::new(Epoch(3), 1)
            })
        );
    }

    #[test]
    fn accepted_below_current_is_refused() {
        assert!(matches!(
            recover(Some(Epoch(5)), Some(Epoch(4)), Zxid::ZERO),
            Err(EpochError::AcceptedBehindCurrent { .. })
        ));
        // A missing acceptedEpoch comes from the data, which may be older.
        assert!(recover(Some(Epoch(5)), None, Zxid::new(Epoch(4), 1)).is_err());
    }
}
