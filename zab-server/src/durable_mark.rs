//! Coalesces the txn log's durability callbacks into few core messages.
//!
//! The log's writer thread runs one callback per append, in zxid order,
//! after each synced group: under load that is hundreds per fsync. Acks are
//! cumulative (a follower's ACK and the leader's own durable append both
//! mean "everything up to this zxid"), so the core only needs the highest
//! one: the callbacks raise a shared mark, and only the first raise since
//! the core last looked sends it a message.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use zab_wire::Zxid;

/// The highest durable zxid not yet taken by the core.
#[derive(Debug)]
pub struct DurableMark {
    zxid: AtomicI64,
    /// A message is on its way to the core (or the core is about to look).
    pending: AtomicBool,
}

impl Default for DurableMark {
    fn default() -> Self {
        DurableMark {
            zxid: AtomicI64::new(i64::MIN),
            pending: AtomicBool::new(false),
        }
    }
}

impl DurableMark {
    /// Records that everything up to `zxid` is durable (writer thread).
    /// Returns whether the caller must wake the core: false while an earlier
    /// wake-up is still unread, since that one will see `zxid` too.
    pub fn raise(&self, zxid: Zxid) -> bool {
        self.zxid.fetch_max(zxid.0, Ordering::SeqCst);
        !self.pending.swap(true, Ordering::SeqCst)
    }

    /// The highest durable zxid raised since the last call, if any (core).
    /// Re-arms the wake-up first, so a raise racing with this call either
    /// shows up here or sends a new message.
    pub fn take(&self) -> Option<Zxid> {
        self.pending.store(false, Ordering::SeqCst);
        match self.zxid.swap(i64::MIN, Ordering::SeqCst) {
            i64::MIN => None,
            z => Some(Zxid(z)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn only_the_first_raise_since_a_take_wakes_the_core() {
        let m = DurableMark::default();
        assert_eq!(m.take(), None);
        assert!(m.raise(Zxid(5)));
        assert!(!m.raise(Zxid(6)));
        assert!(!m.raise(Zxid(7)));
        assert_eq!(m.take(), Some(Zxid(7)));
        assert_eq!(m.take(), None);
        assert!(m.raise(Zxid(8)));
        assert_eq!(m.take(), Some(Zxid(8)));
    }

    #[test]
    fn the_mark_never_goes_down() {
        let m = DurableMark::default();
        m.raise(Zxid(9));
        m.raise(Zxid(4));
        assert_eq!(m.take(), Some(Zxid(9)));
    }

    /// A writer raising 1..=N while the core takes: no raise is lost, the
    /// values only go up, and the last one is N. A wake-up may find nothing
    /// (a raise racing with `take` both shows up in it and sends a message),
    /// so wake-ups are not counted.
    #[test]
    fn no_raise_is_lost_between_threads() {
        const N: i64 = 100_000;
        let m = Arc::new(DurableMark::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for z in 1..=N {
                    if m.raise(Zxid(z)) {
                        tx.send(()).expect("core alive");
                    }
                }
            })
        };
        let mut seen = 0;
        while seen < N {
            rx.recv().expect("a wake-up for every unread raise");
            if let Some(z) = m.take() {
                assert!(z.0 > seen, "went back from {seen} to {}", z.0);
                seen = z.0;
            }
        }
        writer.join().expect("writer");
        assert_eq!(seen, N);
    }
}
