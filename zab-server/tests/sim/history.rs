//! Applied histories: the txns a tree holds, in the order they were
//! applied, with a running hash so that "is this history a prefix of that
//! one" is O(1) — the checks run after every simulated event.

use std::hash::{Hash, Hasher};

use zab_wire::Zxid;

/// `DefaultHasher::new()` has fixed keys: the same bytes hash the same in
/// every run, which keeps seeds replayable.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub zxid: Zxid,
    /// Hash of the encoded txn.
    pub digest: u64,
    /// Hash of every entry up to and including this one.
    pub chain: u64,
}

#[derive(Clone, Debug, Default)]
pub struct History {
    entries: Vec<Entry>,
}

impl History {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }

    pub fn last_zxid(&self) -> Zxid {
        self.entries.last().map_or(Zxid::ZERO, |e| e.zxid)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends a txn; an error if it does not come after the last one
    /// (a duplicate or a reordering).
    pub fn push(&mut self, zxid: Zxid, digest: u64) -> Result<(), String> {
        let prev = self.entries.last().copied();
        if let Some(p) = prev {
            if zxid <= p.zxid {
                return Err(format!("applied {zxid} after {}", p.zxid));
            }
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (prev.map_or(0, |p| p.chain), zxid.0, digest).hash(&mut h);
        self.entries.push(Entry {
            zxid,
            digest,
            chain: h.finish(),
        });
        Ok(())
    }

    pub fn push_entry(&mut self, e: Entry) -> Result<(), String> {
        self.push(e.zxid, e.digest)
    }

    /// Is `self` a prefix of `other` (same txns, same order)?
    pub fn is_prefix_of(&self, other: &History) -> bool {
        let n = self.entries.len();
        n <= other.entries.len()
            && (n == 0 || self.entries[n - 1].chain == other.entries[n - 1].chain)
    }

    /// Where `self` and `other` first differ, for failure messages.
    pub fn divergence(&self, other: &History) -> String {
        let i = self
            .entries
            .iter()
            .zip(&other.entries)
            .position(|(a, b)| a.zxid != b.zxid || a.digest != b.digest)
            .unwrap_or(self.len().min(other.len()));
        format!(
            "lengths {} and {}, first difference at #{i}: {:?} vs {:?}",
            self.len(),
            other.len(),
            self.entries.get(i).map(|e| e.zxid),
            other.entries.get(i).map(|e| e.zxid)
        )
    }
}
