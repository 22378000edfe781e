//! Which request a session sends next: pure and deterministic given a seed,
//! so two runs against two systems send the same sequence.

use bytes::Bytes;
use zab_wire::jute::{Acl, CreateRequest, PathWatchRequest, Request, SetDataRequest};

use super::options::OpKind;

/// The parent of every node the generator creates.
pub const ROOT: &str = "/bench";

/// The path of key `i`, created in the set-up phase.
pub fn key_path(i: u64) -> String {
    format!("{ROOT}/k{i}")
}

/// What a request measures, for per-operation statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpClass {
    Create,
    Set,
    Get,
}

impl OpClass {
    pub const ALL: [OpClass; 3] = [OpClass::Create, OpClass::Set, OpClass::Get];

    pub fn name(self) -> &'static str {
        match self {
            OpClass::Create => "create",
            OpClass::Set => "set",
            OpClass::Get => "get",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A persistent, open-ACL create (op 1) of `path` holding `data`.
pub fn create(path: String, data: Bytes) -> Request {
    Request::Create {
        op: zab_wire::jute::op::CREATE,
        req: CreateRequest {
            path,
            data: Some(data),
            acl: Some(Acl::open_unsafe()),
            flags: 0,
        },
    }
}

/// SplitMix64: tiny, fast and good enough to pick keys; no dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is negligible for the
    /// key counts used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Creates keys `first, first + step, ...` below `end`: one session's share
/// of the set-up phase, so sessions partition the keys without talking.
#[derive(Debug, Clone)]
pub struct Populate {
    next: u64,
    step: u64,
    end: u64,
    value: Bytes,
}

impl Populate {
    /// Session `index` of `sessions` creating its share of `keys` keys.
    pub fn share(index: usize, sessions: usize, keys: u64, value: Bytes) -> Self {
        Populate {
            next: index as u64,
            step: sessions.max(1) as u64,
            end: keys,
            value,
        }
    }

    pub fn next_request(&mut self) -> Option<(OpClass, Request)> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += self.step;
        Some((OpClass::Create, create(key_path(i), self.value.clone())))
    }
}

/// The requests of the timed phase.
#[derive(Debug, Clone)]
pub struct Mix {
    kind: OpKind,
    read_ratio: f64,
    keys: u64,
    value: Bytes,
    rng: SplitMix64,
    /// Distinguishes this session's (and this run's) created nodes.
    create_prefix: String,
    created: u64,
}

impl Mix {
    /// `run` tells apart the nodes created by different runs against the
    /// same ensemble, so `--op create` never meets NodeExists.
    pub fn new(
        kind: OpKind,
        read_ratio: f64,
        keys: u64,
        value: Bytes,
        seed: u64,
        session: usize,
        run: u64,
    ) -> Self {
        Mix {
            kind,
            read_ratio,
            keys,
            value,
            // Distinct, reproducible streams per session.
            rng: SplitMix64::new(seed ^ (session as u64).wrapping_mul(0xA24B_AED4_963E_E407)),
            create_prefix: format!("{ROOT}/c{run:x}-{session}-"),
            created: 0,
        }
    }

    pub fn next_request(&mut self) -> (OpClass, Request) {
        let read = match self.kind {
            OpKind::Create => {
                let path = format!("{}{}", self.create_prefix, self.created);
                self.created += 1;
                return (OpClass::Create, create(path, self.value.clone()));
            }
            OpKind::Get => true,
            OpKind::Set => false,
            OpKind::Mixed => self.rng.unit() < self.read_ratio,
        };
        let path = key_path(self.rng.below(self.keys));
        if read {
            let req = PathWatchRequest { path, watch: false };
            (OpClass::Get, Request::GetData(req))
        } else {
            let req = SetDataRequest {
                path,
                data: Some(self.value.clone()),
                version: -1,
            };
            (OpClass::Set, Request::SetData(req))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_partition_the_keys() {
        let mut seen = Vec::new();
        for s in 0..3 {
            let mut p = Populate::share(s, 3, 10, Bytes::from_static(b"v"));
            while let Some((class, req)) = p.next_request() {
                assert_eq!(class, OpClass::Create);
                let Request::Create { req, .. } = req else {
                    panic!("not a create: {req:?}")
                };
                seen.push(req.path);
            }
        }
        seen.sort();
        let mut want: Vec<String> = (0..10).map(key_path).collect();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn mixed_reads_about_the_ratio_and_stays_within_keys() {
        let mut m = Mix::new(OpKind::Mixed, 0.9, 50, Bytes::from_static(b"x"), 7, 0, 1);
        let mut reads = 0;
        for _ in 0..10_000 {
            let (class, req) = m.next_request();
            let path = match &req {
                Request::GetData(r) => &r.path,
                Request::SetData(r) => &r.path,
                other => panic!("unexpected {other:?}"),
            };
            let i: u64 = path.strip_prefix("/bench/k").unwrap().parse().unwrap();
            assert!(i < 50);
            if class == OpClass::Get {
                reads += 1;
            }
        }
        assert!((8_800..=9_200).contains(&reads), "{reads} reads of 10000");
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let mk = || Mix::new(OpKind::Mixed, 0.5, 1000, Bytes::new(), 42, 3, 1);
        let (mut a, mut b) = (mk(), mk());
        for _ in 0..100 {
            assert_eq!(a.next_request(), b.next_request());
        }
        let mut c = Mix::new(OpKind::Mixed, 0.5, 1000, Bytes::new(), 42, 4, 1);
        let differs = (0..100).any(|_| a.next_request() != c.next_request());
        assert!(differs, "sessions must not send the same sequence");
    }

    #[test]
    fn creates_are_unique_per_session_and_run() {
        let mut a = Mix::new(OpKind::Create, 0.0, 0, Bytes::new(), 1, 0, 9);
        let mut b = Mix::new(OpKind::Create, 0.0, 0, Bytes::new(), 1, 1, 9);
        let path = |r: Request| match r {
            Request::Create { req, .. } => req.path,
            other => panic!("unexpected {other:?}"),
        };
        let pa: Vec<String> = (0..3).map(|_| path(a.next_request().1)).collect();
        let pb = path(b.next_request().1);
        assert_eq!(pa, ["/bench/c9-0-0", "/bench/c9-0-1", "/bench/c9-0-2"]);
        assert_eq!(pb, "/bench/c9-1-0");
    }
}
