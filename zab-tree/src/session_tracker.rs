//! Session liveness on the server that expires sessions (the standalone
//! server or the leader): session ids, passwords, negotiated timeouts and
//! bucketed expiry.
//!
//! This module owns ZooKeeper's `SessionTrackerImpl` and `ExpiryQueue`
//! (reference B, "Session id and password" and "Expiry and liveness") as a
//! pure core: time is passed in as `now_ms`, and expiry only *reports* the
//! sessions whose deadline has passed and marks them closing. Submitting the
//! `closeSession` txn for them, and removing them once it is applied, is the
//! caller's job. The replicated sessions table (id → timeout, ephemerals)
//! lives in the data tree, not here. Nor is the owner replicated: each
//! leader learns it anew from the requests it sees.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt};
use zab_wire::types::{ServerId, SessionId};

/// The 16-byte session password. It is never stored: every server recomputes
/// it from the id, so a client may resume its session on any server of the
/// ensemble (reference B). ZooKeeper draws it from `java.util.Random` seeded
/// with `id ^ 0xB3415C00` and `nextBytes(16)`; this reproduces that generator
/// bit for bit.
pub fn session_password(id: SessionId) -> [u8; 16] {
    const MULTIPLIER: i64 = 0x5_DEEC_E66D;
    const ADDEND: i64 = 0xB;
    const MASK: i64 = (1 << 48) - 1;
    const SUPER_SECRET: i64 = 0xB341_5C00;

    // `new Random(seed)` scrambles the seed; `nextInt()` is `next(32)`.
    let mut seed = ((id.0 ^ SUPER_SECRET) ^ MULTIPLIER) & MASK;
    let mut next_int = || {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND)) & MASK;
        (seed >> 16) as u32
    };
    // `nextBytes` takes each int's bytes least-significant first.
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        let bytes = next_int().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    out
}

/// The session timeout the server grants: the requested one clamped to
/// `[min, max]`, so 0 or a negative request gets `min` (behaviour 33,
/// reference B step 3). Clamped in ZooKeeper's order (min first, then max),
/// so a misconfigured `min > max` yields `max`.
pub fn negotiate_timeout(requested: i32, min: i32, max: i32) -> i32 {
    let mut timeout = requested;
    if timeout < min {
        timeout = min;
    }
    if timeout > max {
        timeout = max;
    }
    timeout
}

/// Where a session's requests may come from: the server or learner that
/// last created or revalidated it (ZooKeeper's `SessionImpl.owner`,
/// reference D.11). A request from anywhere else is from a connection the
/// client has left, and gets SESSIONMOVED (-118).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionOwner {
    /// A client connection of this server (ZooKeeper's `ServerCnxn.me`:
    /// one owner for all of them, so a move between two connections of the
    /// same server is not a move).
    Local,
    /// A learner, by the leader's id for its link: a learner that links
    /// again is a new owner, as ZooKeeper's owner is the `LearnerHandler`.
    Learner(u64),
}

/// One tracked session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Session {
    timeout_ms: i32,
    /// Set on expiry or when a closeSession is under way: the session can no
    /// longer be touched and its requests get SESSIONEXPIRED (-112).
    closing: bool,
    /// `None` until a request or a revalidation names one, as for every
    /// session a new leader inherits from the tree.
    owner: Option<SessionOwner>,
    /// The bucket the session sits in, `None` once its bucket was expired.
    deadline: Option<i64>,
}

/// Sessions and their expiry buckets (ZooKeeper's `SessionTrackerImpl` with
/// its `ExpiryQueue`).
///
/// Expiry is bucketed by tick: a session touched at `now` expires at
/// `now + timeout` rounded up to the next multiple of the tick, so the
/// expirer only has to wake once per tick and a touch within the same bucket
/// changes nothing.
#[derive(Clone, Debug)]
pub struct SessionTracker {
    tick_ms: i64,
    next_id: i64,
    sessions: HashMap<SessionId, Session>,
    /// deadline → sessions due then. As in ZooKeeper's `ExpiryQueue`, a
    /// bucket emptied by touches or removals stays until its deadline passes,
    /// so the `dump` output counts the same sets ZooKeeper's does.
    buckets: BTreeMap<i64, BTreeSet<SessionId>>,
}

impl SessionTracker {
    /// A tracker for server `server_id` started at `now_ms`, expiring with
    /// granularity `tick_ms` (zoo.cfg `tickTime`; values below 1 are treated
    /// as 1 so that bucketing never divides by zero).
    ///
    /// The first session id is `(sid << 56) | ((now << 24) >>> 8)`: the top
    /// byte names the server, the next five bytes come from the clock, the
    /// low two count sessions (reference B; standalone ids start with 0x01).
    pub fn new(server_id: ServerId, now_ms: i64, tick_ms: i64) -> Self {
        let clock = ((now_ms << 24) as u64 >> 8) as i64;
        let sid = (server_id.0 << 56) as i64;
        let mut next_id = sid | clock;
        if next_id == i64::MIN {
            next_id += 1;
        }
        SessionTracker {
            tick_ms: tick_ms.max(1),
            next_id,
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    /// Allocates the next session id: one more than the previous, skipping
    /// `i64::MIN`, which ZooKeeper reserves as the container-node owner
    /// marker. The caller then [`add`](Self::add)s the session.
    pub fn next_session_id(&mut self) -> SessionId {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == i64::MIN {
            self.next_id = self.next_id.wrapping_add(1);
        }
        SessionId(id)
    }

    /// Starts tracking a session, or re-tracks a known one with a newly
    /// negotiated timeout, and schedules its expiry from `now_ms`. A session
    /// that is already closing is left alone: it is on its way out and must
    /// not be scheduled for a second expiry.
    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) {
        let session = self.sessions.entry(id).or_insert(Session {
            timeout_ms,
            closing: false,
            owner: None,
            deadline: None,
        });
        if session.closing {
            return;
        }
        session.timeout_ms = timeout_ms;
        self.schedule(id, timeout_ms, now_ms);
    }

    /// Records activity (any packet, pings included) on a session and moves
    /// it to the bucket of `now + timeout`. False if the session is unknown
    /// or closing, in which case nothing changes.
    pub fn touch(&mut self, id: SessionId, now_ms: i64) -> bool {
        match self.sessions.get(&id) {
            Some(s) => self.touch_for(id, s.timeout_ms, now_ms),
            None => false,
        }
    }

    /// [`touch`](Self::touch) for `timeout_ms` rather than the session's
    /// own timeout, which stays as it is: ZooKeeper's
    /// `SessionTrackerImpl.touchSession(id, timeout)`, whose callers pass
    /// the timeout their server negotiated with the client (a REVALIDATE's,
    /// a PING's entries, a connection's), which may differ from the one
    /// the session was created with when servers' limits differ.
    pub fn touch_for(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) -> bool {
        match self.sessions.get(&id) {
            Some(s) if !s.closing => {
                self.schedule(id, timeout_ms, now_ms);
                true
            }
            _ => false,
        }
    }

    /// Marks a session closing (a closeSession is under way): it can no
    /// longer be touched. Unknown ids are ignored.
    pub fn set_closing(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    /// Makes `owner` the session's owner, as a createSession or a
    /// revalidation does (ZooKeeper's `setOwner`). Unknown and closing
    /// sessions are left alone.
    pub fn set_owner(&mut self, id: SessionId, owner: SessionOwner) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if !s.closing {
                s.owner = Some(owner);
            }
        }
    }

    /// False if a request from `owner` comes from a connection the session
    /// has left (ZooKeeper's `checkSession` throwing SessionMoved). A
    /// session without an owner yet takes `owner` as its own. Unknown and
    /// closing sessions pass: their requests fail as expired instead.
    pub fn check_owner(&mut self, id: SessionId, owner: SessionOwner) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => *s.owner.get_or_insert(owner) == owner,
            _ => true,
        }
    }

    /// True if the session is tracked and not closing.
    pub fn is_active(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Stops tracking a session (its closeSession was applied).
    pub fn remove(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.remove(&id) {
            if let Some(bucket) = s.deadline.and_then(|d| self.buckets.get_mut(&d)) {
                bucket.remove(&id);
            }
        }
    }

    /// The sessions whose bucket deadline is at or before `now_ms` (oldest
    /// bucket first, ids sorted within a bucket); marks them closing and
    /// drops their buckets. The caller submits a closeSession for each.
    /// Called late, it catches up on every missed bucket, as ZooKeeper's
    /// expirer loop does. A session already closing (its closeSession is in
    /// flight) is not reported again, so no second closeSession is proposed
    /// for it.
    pub fn expire(&mut self, now_ms: i64) -> Vec<SessionId> {
        let later = match now_ms.checked_add(1) {
            Some(after_now) => self.buckets.split_off(&after_now),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.buckets, later);
        let mut expired = Vec::new();
        for id in due.into_values().flatten() {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.deadline = None;
                if !s.closing {
                    s.closing = true;
                    expired.push(id);
                }
            }
        }
        expired
    }

    /// The earliest deadline that has a session in it: when the caller next
    /// needs to call [`expire`](Self::expire). `None` when nothing is due.
    pub fn next_deadline(&self) -> Option<i64> {
        self.buckets
            .iter()
            .find(|(_, ids)| !ids.is_empty())
            .map(|(&deadline, _)| deadline)
    }

    /// The expiry buckets for the `dump` four-letter word (reference E):
    /// deadline in ms → session ids, both sorted. Like ZooKeeper's, it can
    /// include emptied buckets whose deadline has not passed yet.
    pub fn expiry_buckets(&self) -> BTreeMap<i64, Vec<SessionId>> {
        self.buckets
            .iter()
            .map(|(&deadline, ids)| (deadline, ids.iter().copied().collect()))
            .collect()
    }

    /// The timeout a tracked session was added with.
    pub fn timeout(&self, id: SessionId) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.timeout_ms)
    }

    /// Number of tracked sessions, closing ones included.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// ZooKeeper's `ExpiryQueue.roundToNextInterval`: the next multiple of
    /// the tick strictly after `time` (a time already on a tick boundary goes
    /// to the following one).
    fn round_to_next_tick(&self, time: i64) -> i64 {
        time.div_euclid(self.tick_ms)
            .saturating_add(1)
            .saturating_mul(self.tick_ms)
    }

    /// Moves a known session to the bucket of `now + timeout_ms`.
    fn schedule(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) {
        let Some(session) = self.sessions.get(&id).copied() else {
            return;
        };
        let deadline = self.round_to_next_tick(now_ms.saturating_add(i64::from(timeout_ms)));
        if session.deadline == Some(deadline) {
            return;
        }
        if let Some(old) = session.deadline.and_then(|d| self.buckets.get_mut(&d)) {
            old.remove(&id);
        }
        self.buckets.entry(deadline).or_default().insert(id);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.deadline = Some(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: i64 = 2000;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn password_reproduces_zookeeper_3_8_0() {
        // The verified handshake in reference B: session 0x01000008e9f70000
        // got password 9b401a808cf5b1e671207289b59e8b8a.
        let pw = session_password(SessionId(0x0100_0008_e9f7_0000));
        assert_eq!(hex(&pw), "9b401a808cf5b1e671207289b59e8b8a");
    }

    #[test]
    fn password_depends_on_the_id() {
        let a = session_password(SessionId(0x0100_0008_e9f7_0000));
        let b = session_password(SessionId(0x0100_0008_e9f7_0001));
        assert_ne!(a, b);
        assert_eq!(a, session_password(SessionId(0x0100_0008_e9f7_0000)));
    }

    #[test]
    fn negotiate_timeout_clamps() {
        // Behaviour 33 / reference B: tickTime 2000 → [4000, 40000].
        assert_eq!(negotiate_timeout(1, 4000, 40000), 4000);
        assert_eq!(negotiate_timeout(0, 4000, 40000), 4000);
        assert_eq!(negotiate_timeout(-5, 4000, 40000), 4000);
        assert_eq!(negotiate_timeout(10000, 4000, 40000), 10000);
        assert_eq!(negotiate_timeout(100000, 4000, 40000), 40000);
        assert_eq!(negotiate_timeout(4000, 4000, 40000), 4000);
        assert_eq!(negotiate_timeout(40000, 4000, 40000), 40000);
    }

    #[test]
    fn first_id_has_server_byte_and_clock() {
        let now = 0x0000_0189_1234_5678_i64;
        let mut t = SessionTracker::new(ServerId(1), now, TICK);
        let id = t.next_session_id();
        assert_eq!(id.0 >> 56, 1);
        // Bits 16..56 are the low 40 bits of the clock.
        assert_eq!((id.0 >> 16) & 0xFF_FFFF_FFFF, now & 0xFF_FFFF_FFFF);
        assert_eq!(id.0 & 0xFFFF, 0);
        assert_eq!(t.next_session_id(), SessionId(id.0 + 1));
        assert_eq!(t.next_session_id(), SessionId(id.0 + 2));
    }

    #[test]
    fn server_id_owns_the_top_byte() {
        // `>>> 8` keeps the clock out of the top byte, even for a clock
        // with its high bits set.
        let mut t = SessionTracker::new(ServerId(3), -1, TICK);
        let id = t.next_session_id();
        assert_eq!((id.0 as u64) >> 56, 3);
        let mut t = SessionTracker::new(ServerId(0xFE), 1_700_000_000_000, TICK);
        assert_eq!((t.next_session_id().0 as u64) >> 56, 0xFE);
    }

    #[test]
    fn ids_skip_the_container_marker() {
        // Server 0x80 with a clock of all ones lands right before i64::MIN
        // after wrapping.
        let mut t = SessionTracker::new(ServerId(0x7F), -1, TICK);
        let first = t.next_session_id();
        assert_eq!(first.0, 0x7FFF_FFFF_FFFF_0000);
        t.next_id = i64::MAX;
        assert_eq!(t.next_session_id(), SessionId(i64::MAX));
        assert_eq!(t.next_session_id(), SessionId(i64::MIN + 1));
        // A start exactly on the marker is bumped too.
        let t = SessionTracker::new(ServerId(0x80), 0, TICK);
        assert_eq!(t.next_id, i64::MIN + 1);
    }

    #[test]
    fn deadline_is_rounded_up_to_next_tick() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(10);
        t.add(s, 4000, 1_000_300);
        // 1_004_300 rounds up to 1_006_000.
        assert_eq!(t.next_deadline(), Some(1_006_000));
        assert_eq!(t.expiry_buckets(), BTreeMap::from([(1_006_000, vec![s])]));
        // On a tick boundary it goes to the next one, as ExpiryQueue does.
        let u = SessionId(11);
        t.add(u, 4000, 1_002_000);
        assert_eq!(t.expiry_buckets()[&1_008_000], vec![u]);
    }

    #[test]
    fn idle_session_expires_between_timeout_and_timeout_plus_tick() {
        // 3.8.0, tick 2000, timeout 4000: an idle session expired after
        // ~5.4 s (reference B). The deadline falls in (now+4000, now+6000].
        for start in [1_000_000, 1_000_600, 1_001_999, 1_002_000] {
            let mut t = SessionTracker::new(ServerId(1), start, TICK);
            let s = t.next_session_id();
            t.add(s, 4000, start);
            let deadline = t.next_deadline().unwrap_or(i64::MAX);
            assert!(deadline > start + 4000 && deadline <= start + 6000);
            assert!(t.expire(deadline - 1).is_empty());
            assert!(t.is_active(s));
            assert_eq!(t.expire(deadline), vec![s]);
            assert!(!t.is_active(s));
            // Reported once only.
            assert!(t.expire(deadline + 10 * TICK).is_empty());
            assert_eq!(t.next_deadline(), None);
        }
        // The observed case: created at x600 → expires 5.4 s later.
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        t.add(SessionId(1), 4000, 1_000_600);
        assert_eq!(t.next_deadline(), Some(1_006_000));
    }

    #[test]
    fn touch_moves_session_to_later_bucket() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(5);
        t.add(s, 4000, 10_000);
        assert_eq!(t.next_deadline(), Some(16_000));
        // Same bucket: no change.
        assert!(t.touch(s, 10_500));
        assert_eq!(t.expiry_buckets(), BTreeMap::from([(16_000, vec![s])]));
        assert!(t.touch(s, 13_000));
        assert_eq!(t.next_deadline(), Some(18_000));
        // The emptied bucket stays until its deadline, as in ZooKeeper's dump.
        assert_eq!(
            t.expiry_buckets(),
            BTreeMap::from([(16_000, vec![]), (18_000, vec![s])])
        );
        assert!(t.expire(16_000).is_empty());
        assert_eq!(t.expiry_buckets(), BTreeMap::from([(18_000, vec![s])]));
        assert_eq!(t.expire(18_000), vec![s]);
    }

    #[test]
    fn closing_sessions_are_not_touchable() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(5);
        t.add(s, 4000, 0);
        t.set_closing(s);
        assert!(!t.is_active(s));
        assert!(!t.touch(s, 1000));
        // Re-adding does not revive or reschedule it.
        t.add(s, 4000, 3000);
        assert!(!t.is_active(s));
        assert_eq!(t.next_deadline(), Some(6000));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn closing_session_is_not_expired_twice() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        t.add(SessionId(1), 4000, 0);
        t.add(SessionId(2), 4000, 0);
        t.set_closing(SessionId(1));
        assert_eq!(t.expire(6000), vec![SessionId(2)]);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn expired_sessions_are_closing_until_removed() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(5);
        t.add(s, 4000, 0);
        assert_eq!(t.expire(6000), vec![s]);
        assert!(!t.touch(s, 6001));
        assert_eq!(t.timeout(s), Some(4000));
        t.remove(s);
        assert_eq!(t.timeout(s), None);
        assert!(t.is_empty());
    }

    #[test]
    fn unknown_sessions() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(99);
        assert!(!t.touch(s, 0));
        assert!(!t.is_active(s));
        assert_eq!(t.timeout(s), None);
        t.set_closing(s);
        t.remove(s);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn remove_takes_session_out_of_its_bucket() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        t.add(SessionId(1), 4000, 0);
        t.add(SessionId(2), 4000, 0);
        t.remove(SessionId(1));
        assert_eq!(
            t.expiry_buckets(),
            BTreeMap::from([(6000, vec![SessionId(2)])])
        );
        assert_eq!(t.expire(6000), vec![SessionId(2)]);
    }

    #[test]
    fn late_expire_catches_up_on_missed_buckets_in_order() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        t.add(SessionId(3), 10_000, 0); // 12_000
        t.add(SessionId(2), 4000, 0); // 6000
        t.add(SessionId(1), 4000, 0); // 6000
        t.add(SessionId(4), 30_000, 0); // 32_000
        assert_eq!(t.len(), 4);
        assert_eq!(
            t.expire(20_000),
            vec![SessionId(1), SessionId(2), SessionId(3)]
        );
        assert_eq!(t.next_deadline(), Some(32_000));
        assert!(t.is_active(SessionId(4)));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn re_adding_uses_the_new_timeout() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(7);
        t.add(s, 4000, 0);
        t.add(s, 10_000, 1000);
        assert_eq!(t.timeout(s), Some(10_000));
        assert_eq!(t.next_deadline(), Some(12_000));
        assert!(t.touch(s, 5000));
        assert_eq!(t.next_deadline(), Some(16_000));
    }

    #[test]
    fn next_deadline_skips_emptied_buckets() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        t.add(SessionId(1), 4000, 0);
        t.touch(SessionId(1), 4000);
        assert_eq!(t.next_deadline(), Some(10_000));
    }

    #[test]
    fn zero_tick_does_not_panic() {
        let mut t = SessionTracker::new(ServerId(1), 0, 0);
        t.add(SessionId(1), 0, i64::MAX);
        assert!(t.next_deadline().is_some());
        assert_eq!(t.expire(i64::MAX), vec![SessionId(1)]);
    }

    #[test]
    fn first_request_claims_an_ownerless_session_and_others_are_moved() {
        // A leader inherits sessions without owners; the first request
        // names it (`checkSession`: `if (session.owner == null)`).
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(1);
        t.add(s, 4000, 0);
        assert!(t.check_owner(s, SessionOwner::Learner(7)));
        assert!(t.check_owner(s, SessionOwner::Learner(7)));
        assert!(!t.check_owner(s, SessionOwner::Local));
        assert!(!t.check_owner(s, SessionOwner::Learner(8)));
    }

    #[test]
    fn revalidation_moves_the_session() {
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(1);
        t.add(s, 4000, 0);
        t.set_owner(s, SessionOwner::Local);
        t.set_owner(s, SessionOwner::Learner(3));
        assert!(!t.check_owner(s, SessionOwner::Local));
        assert!(t.check_owner(s, SessionOwner::Learner(3)));
    }

    #[test]
    fn unknown_and_closing_sessions_are_never_moved() {
        // Their requests fail as expired, which `checkSession` checks first.
        let mut t = SessionTracker::new(ServerId(1), 0, TICK);
        let s = SessionId(1);
        assert!(t.check_owner(s, SessionOwner::Local));
        t.add(s, 4000, 0);
        t.set_owner(s, SessionOwner::Learner(3));
        t.set_closing(s);
        assert!(t.check_owner(s, SessionOwner::Local));
        t.set_owner(s, SessionOwner::Local);
        t.remove(s);
        t.add(s, 4000, 0);
        // Re-added after removal: a new session, without an owner.
        assert!(t.check_owner(s, SessionOwner::Local));
    }
}
