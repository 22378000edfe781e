//! zab-leader's [`TxnLogView`] over zab-store's txn log: how the leader
//! reads its on-disk history to sync a learner behind the committed-log
//! window (reference F.4 rule 5). Reads stop at the requested upper bound,
//! so a learner only costs the leader the txns it actually needs. It lives
//! here, where the two crates meet, so that zab-leader needs no RocksDB.

use bytes::Bytes;
use zab_store::TxnLog;
use zab_wire::Zxid;

use zab_leader::TxnLogView;

/// A [`TxnLogView`] backed by a [`zab_store::TxnLog`] handle.
#[derive(Clone)]
pub struct StoreTxnLog {
    log: TxnLog,
}

impl StoreTxnLog {
    pub fn new(log: TxnLog) -> Self {
        StoreTxnLog { log }
    }
}

impl TxnLogView for StoreTxnLog {
    fn read_from(&self, from: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        self.read_between(from, Zxid(i64::MAX))
    }

    fn size_between(&self, from: Zxid, to: Zxid) -> Result<u64, String> {
        self.log.size_between(from, to).map_err(|e| e.to_string())
    }

    fn size_exceeds(&self, from: Zxid, limit: u64) -> Result<bool, String> {
        self.log
            .size_exceeds(from, limit)
            .map_err(|e| e.to_string())
    }

    fn read_between(&self, from: Zxid, to: Zxid) -> Result<Vec<(Zxid, Bytes)>, String> {
        let mut out = Vec::new();
        for entry in self.log.read_from(from).map_err(|e| e.to_string())? {
            let (zxid, data) = entry.map_err(|e| e.to_string())?;
            if zxid > to {
                break;
            }
            out.push((zxid, data));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;
    use zab_store::{Store, StoreOptions};
    use zab_wire::Epoch;

    use zab_leader::{select, CommittedLog, SyncPlan};

    fn z(c: u32) -> Zxid {
        Zxid::new(Epoch(1), c)
    }

    #[test]
    fn rule5_reads_the_store_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let log = store.log();
        let (tx, rx) = mpsc::channel();
        let entries: Vec<(Zxid, Bytes)> = (1..=20)
            .map(|c| (z(c), Bytes::from(format!("t{c}"))))
            .collect();
        log.append_batch(entries.clone(), move |r| {
            let _ = tx.send(r.is_ok());
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));

        let view = StoreTxnLog::new(log);
        assert_eq!(view.read_from(z(18)).unwrap(), entries[17..].to_vec());
        assert_eq!(
            view.read_between(z(3), z(5)).unwrap(),
            entries[2..5].to_vec()
        );
        let total = entries.iter().map(|e| e.1.len() as u64).sum::<u64>();
        assert_eq!(view.size_between(z(1), z(20)).unwrap(), total);
        assert!(view.size_exceeds(z(1), total - 1).unwrap());
        assert!(!view.size_exceeds(z(1), total).unwrap());

        // Window (1,11)..(1,20); a learner at (1,4) syncs from the log.
        let window = CommittedLog::from_entries(500, entries[10..].iter().cloned());
        let plan = select(z(4), z(20), &window, &view, 0, 0.33);
        assert_eq!(
            plan,
            SyncPlan::Diff {
                to: z(20),
                txns: entries[4..].to_vec()
            }
        );
    }
}
