//! Differential test against Apache ZooKeeper: the same seeded sequence of
//! requests, sent as raw frames by two sessions, goes to Debian's ZooKeeper
//! 3.8 and to zab (standalone, and through a follower or an observer of
//! an ensemble; the same zoo.cfg), and every reply — header and body — and
//! every watch event must match, and so must what the four-letter words
//! report of the server's state at the end (counts, watches, ephemerals).
//! Only what differs by nature is masked: times, session ids, the order of
//! unordered lists, the ports in `/zookeeper/config`.
//!
//! ZooKeeper is the oracle here, so this proves behaviour this project's
//! own expectations may have missed. The generator keeps to requests on
//! which ZooKeeper 3.8 and 3.9 agree, since zab follows 3.9 where they do
//! not (reference §0): no persistent watches, checkWatches or
//! removeWatches; inside a multi only op 1 and 21 creates, none of them
//! under `/s` (see `known_path`); no
//! stand-alone `check` (3.8.0 cannot restart after one); no createTTL with
//! a plain mode and a negative ttl (3.8.0 exits on it); quota limit and
//! stats nodes hold only text ZooKeeper can parse (it fails mid-apply on
//! anything else). Where ZooKeeper's own 3.8 line changed after 3.8.0,
//! the oracle's answer is read as the later release's: `exists` on a node
//! the session may not read (see `exists_as_since_3_8_4`).
//!
//! Both servers run with `enforceQuota=true`, and odd seeds begin by
//! setting quotas up, so that usage counting and hard limits are compared
//! too.
//!
//! After each request, the other session sends a ping: events are sent in
//! order on a connection, so by its reply every event the request caused
//! for that session has arrived.
//!
//! To run more seeds than CI does, set `ZAB_DIFFERENTIAL_SEEDS=FIRST..LAST`
//! (both ends included; the learner test runs seeds `99 + FIRST` to
//! `99 + LAST`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "sim/rng.rs"]
mod rng;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster::{ClusterSpec, Mode, ServerCommand, TestCluster};
use rng::Rng;
use support::raw::{be_i32, be_i64, Jute};
use support::{Target, TestServer};

/// Seeds per run and requests per seed: about 10 s against both servers
/// (about 230 seeds of 300–500 passed standalone, and about 40 through a
/// learner, when the test was written).
const SEEDS: u64 = 6;
const STEPS: usize = 300;
/// Seeds through a learner (an ensemble of JVMs takes a few seconds).
const ENSEMBLE_SEEDS: u64 = 2;

/// The seeds to run: `count` from `first` unless `ZAB_DIFFERENTIAL_SEEDS`
/// names a range.
fn seeds(first: u64, count: u64) -> std::ops::Range<u64> {
    let Ok(range) = std::env::var("ZAB_DIFFERENTIAL_SEEDS") else {
        return first..first + count;
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match range.split_once("..").map(|(a, b)| (parse(a), parse(b))) {
        Some((Some(a), Some(b))) if a <= b => first + a - 1..first + b,
        _ => panic!("ZAB_DIFFERENTIAL_SEEDS must be FIRST..LAST, not {range:?}"),
    }
}

const DIGEST: &[u8] = b"user:smGaoVKd/cQkjm7b88GyorAUz20="; // user:pass

fn below(rng: &mut Rng, n: usize) -> usize {
    rng.range(0, n as u64 - 1) as usize
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    rng.pick(items).expect("a choice")
}

const PATHS: &[&[u8]] = &[
    b"/a",
    b"/a/b",
    b"/a/b/c",
    b"/c",
    b"/c/d",
    b"/e",
    b"/t",
    b"/t/x",
    b"/zookeeper",
    b"/zookeeper/quota",
    b"/",
    b"/a/b0000000000",
    b"/c/d/e",
    b"/s",
    // Quotas on /a and /c/d: the servers keep their usage in the stats
    // nodes, and enforce their hard limits (`enforceQuota=true`).
    b"/zookeeper/quota/a",
    b"/zookeeper/quota/a/zookeeper_limits",
    b"/zookeeper/quota/a/zookeeper_stats",
    b"/zookeeper/quota/c",
    b"/zookeeper/quota/c/d",
    b"/zookeeper/quota/c/d/zookeeper_limits",
    b"/zookeeper/quota/c/d/zookeeper_stats",
];
/// What limit and stats nodes hold. ZooKeeper fails in the middle of
/// applying a txn when a stats node does not parse (and in its prepare
/// when a limit node holds null), so these nodes get nothing else.
const QUOTA_DATA: &[&[u8]] = &[
    b"count=0,bytes=0",
    b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
    b"count=-1,bytes=-1=;byteHardLimit=60;countHardLimit=-1",
    b"count=2,bytes=10",
    b"",
];
/// Paths ZooKeeper refuses or cannot find, each for its own reason.
const BAD_PATHS: &[&[u8]] = &[b"", b"a", b"/a/", b"//a", b"/a//b", b"/a/./b", b"/.."];

/// Twelve names under `/s`: their creates and deletes grow its children
/// set past a table of 8 and shrink it again, so that getChildren's order
/// (ZooKeeper's `HashSet`'s) is compared across resizes.
const SIBLINGS: &[&[u8]] = &[
    b"/s/0", b"/s/1", b"/s/2", b"/s/3", b"/s/4", b"/s/5", b"/s/6", b"/s/7", b"/s/8", b"/s/9",
    b"/s/a", b"/s/b",
];

fn path(rng: &mut Rng) -> &'static [u8] {
    if rng.chance(25) {
        pick(rng, SIBLINGS)
    } else {
        known_path(rng)
    }
}

/// A path of [`PATHS`] or [`BAD_PATHS`]. Creates inside a multi keep to
/// these: children one txn creates share their czxid, and zab orders
/// those by name where ZooKeeper's set has them in the multi's order.
fn known_path(rng: &mut Rng) -> &'static [u8] {
    if rng.chance(6) {
        pick(rng, BAD_PATHS)
    } else {
        pick(rng, PATHS)
    }
}

fn acl(rng: &mut Rng) -> Jute {
    let one = |perms: i32, scheme: &[u8], id: &[u8]| {
        Jute::default().int(1).int(perms).buffer(scheme).buffer(id)
    };
    match below(rng, 12) {
        0..=3 => one(31, b"world", b"anyone"),
        4 => one(1, b"world", b"anyone"),
        5 => one(31, b"digest", DIGEST),
        6 => one(31, b"auth", b""),
        7 => one(31, b"ip", b"127.0.0.1"),
        8 => one(31, b"ip", b"10.0.0.0/8"),
        9 => one(31, b"bad", b"x"),
        10 => Jute::default().int(0),
        _ => one(29, b"world", b"anyone"),
    }
}

/// Data for a write to `path`.
fn data(rng: &mut Rng, path: &[u8]) -> Jute {
    if path.ends_with(b"/zookeeper_limits") || path.ends_with(b"/zookeeper_stats") {
        return Jute::default().buffer(pick(rng, QUOTA_DATA));
    }
    match below(rng, 4) {
        0 => Jute::default().int(-1),
        1 => Jute::default().buffer(b""),
        2 => Jute::default().buffer(b"hello"),
        _ => {
            let len = below(rng, 200) + 1;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            Jute::default().buffer(&bytes)
        }
    }
}

fn version(rng: &mut Rng) -> i32 {
    pick(rng, &[-1, -1, 0, 1, 2, 5])
}

fn create_body(rng: &mut Rng, op: i32, at: &[u8]) -> Jute {
    let flags = match op {
        19 => pick(rng, &[4, 4, 0]),
        21 => pick(rng, &[5, 6, 0, 1, 7]),
        _ => pick(rng, &[0, 0, 0, 1, 2, 3, 4, 5, 7, -1]),
    };
    let body = Jute::default()
        .buffer(at)
        .then(data(rng, at))
        .then(acl(rng))
        .int(flags);
    if op != 21 {
        return body;
    }
    let ttl = pick(rng, &[1i64, 1000, 100_000, 0, 1 << 41]);
    // A plain mode with a negative ttl makes ZooKeeper 3.8.0 exit.
    body.long(ttl)
}

/// One request: its opcode and body.
fn request(rng: &mut Rng) -> (i32, Jute) {
    let watch = rng.chance(50);
    match below(rng, 26) {
        0..=4 => {
            let op = pick(rng, &[1, 15, 19, 21]);
            let at = path(rng);
            (op, create_body(rng, op, at))
        }
        5..=7 => (2, Jute::default().buffer(path(rng)).int(version(rng))),
        8..=9 => (3, Jute::default().buffer(path(rng)).boolean(watch)),
        10..=12 => (4, Jute::default().buffer(path(rng)).boolean(watch)),
        13..=15 => {
            let at = path(rng);
            let body = Jute::default()
                .buffer(at)
                .then(data(rng, at))
                .int(version(rng));
            (5, body)
        }
        16 => (6, Jute::default().buffer(path(rng))),
        17 => {
            let body = Jute::default()
                .buffer(path(rng))
                .then(acl(rng))
                .int(version(rng));
            (7, body)
        }
        18..=19 => {
            let op = pick(rng, &[8, 12]);
            // Half of them list `/s`, whose children come and go.
            let at = if rng.chance(50) { b"/s" } else { path(rng) };
            (op, Jute::default().buffer(at).boolean(watch))
        }
        20 => (9, Jute::default().buffer(path(rng))),
        21 => (14, multi(rng, false)),
        22 => (22, multi(rng, true)),
        23 => {
            let prefix = pick(rng, &[&b"/"[..], b"/a", b"/c", b"/x"]);
            (103, Jute::default().buffer(prefix))
        }
        24 => (104, Jute::default().buffer(path(rng))),
        _ => match below(rng, 6) {
            0 => (107, Jute::default()),
            1 | 2 => {
                let auth = pick(rng, &[&b"user:pass"[..], b"user:wrong"]);
                let body = Jute::default().int(0).buffer(b"digest").buffer(auth);
                (100, body)
            }
            // setWatches as after a reconnect: from zxid 0 every watched
            // node that exists (or not) gets its event at once.
            3 | 4 => {
                let mut body = Jute::default().long(pick(rng, &[0, 1, 5, 20]));
                for _ in 0..3 {
                    let n = below(rng, 3);
                    body = body.int(n as i32);
                    for _ in 0..n {
                        body = body.buffer(path(rng));
                    }
                }
                (101, body)
            }
            // closeSession: its ephemerals go, and the server closes the
            // connection; a new session stands in.
            _ => (-11, Jute::default()),
        },
    }
}

fn multi(rng: &mut Rng, reads: bool) -> Jute {
    let mut body = Jute::default();
    for _ in 0..below(rng, 4) {
        let (op, sub) = if reads {
            // Now and then a write op, which ends the multiRead with
            // MARSHALLINGERROR and the results before it (behaviour 48).
            let op = pick(rng, &[4, 8, 4, 8, 4, 8, 4, 2]);
            let sub = Jute::default().buffer(path(rng));
            if op == 2 {
                (op, sub.int(version(rng)))
            } else {
                (op, sub.boolean(false))
            }
        } else {
            match below(rng, 5) {
                0 | 1 => {
                    let op = pick(rng, &[1, 21]);
                    let at = known_path(rng);
                    (op, create_body(rng, op, at))
                }
                2 => (2, Jute::default().buffer(path(rng)).int(version(rng))),
                3 => {
                    let at = path(rng);
                    let set = Jute::default()
                        .buffer(at)
                        .then(data(rng, at))
                        .int(version(rng));
                    (5, set)
                }
                _ => (13, Jute::default().buffer(path(rng)).int(version(rng))),
            }
        };
        body = body.int(op).boolean(false).int(-1).then(sub);
    }
    body.int(-1).boolean(true).int(-1)
}

/// A persistent node open to anyone.
fn plain_create(path: &[u8], data: Option<&[u8]>) -> (i32, Jute) {
    let body = Jute::default().buffer(path);
    let body = match data {
        Some(d) => body.buffer(d),
        None => body.int(-1),
    };
    let open = Jute::default()
        .int(1)
        .int(31)
        .buffer(b"world")
        .buffer(b"anyone");
    (1, body.then(open).int(0))
}

/// Odd seeds start with quotas, as zkCli's `setquota` makes them: a hard
/// limit of 2 nodes on /a (two seeds in three) and of 60 bytes on /c/d
/// (one seed in two, by `seed / 2`), so that the random writes below them
/// move their usage and run into their limits.
///
/// Every seed first creates `/s`, the parent of [`SIBLINGS`].
fn preamble(seed: u64) -> Vec<(i32, Jute)> {
    let mut steps = vec![plain_create(b"/s", None)];
    if seed.is_multiple_of(2) {
        return steps;
    }
    let create = plain_create;
    steps.extend([
        create(b"/a", Some(b"d")),
        create(b"/c", None),
        create(b"/c/d", Some(b"0123456789")),
        create(b"/zookeeper/quota/a", None),
        create(b"/zookeeper/quota/c", None),
        create(b"/zookeeper/quota/c/d", None),
    ]);
    for (on, limits, wanted) in [
        ("a", QUOTA_DATA[1], !seed.is_multiple_of(3)),
        ("c/d", QUOTA_DATA[2], (seed / 2).is_multiple_of(2)),
    ] {
        if wanted {
            let at = format!("/zookeeper/quota/{on}");
            steps.push(create(
                format!("{at}/zookeeper_limits").as_bytes(),
                Some(limits),
            ));
            steps.push(create(
                format!("{at}/zookeeper_stats").as_bytes(),
                Some(QUOTA_DATA[0]),
            ));
        }
    }
    steps
}

/// A raw session.
struct Session {
    stream: TcpStream,
    id: i64,
    xid: i32,
    /// Events received and not yet recorded: (type, state, path).
    events: Vec<(i32, i32, Vec<u8>)>,
}

impl Session {
    fn open(addr: SocketAddr) -> Session {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let connect = support::raw::connect_request(30_000, 0, &[0; 16]);
        stream.write_all(&connect.frame()).expect("send connect");
        let mut s = Session {
            stream,
            id: 0,
            xid: 0,
            events: Vec::new(),
        };
        let reply = s.frame().expect("ConnectResponse");
        s.id = be_i64(&reply, 8);
        s
    }

    fn frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut body = vec![0; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(body)
    }

    /// Sends one request and returns its reply, collecting events on the way;
    /// `None` if the server closed the connection.
    fn call(&mut self, op: i32, body: Jute) -> Option<Vec<u8>> {
        let xid = match op {
            11 => -2,
            100 => -4,
            101 => -8,
            _ => {
                self.xid += 1;
                self.xid
            }
        };
        let frame = Jute::default().int(xid).int(op).then(body).frame();
        self.stream.write_all(&frame).ok()?;
        loop {
            let reply = self.frame()?;
            if be_i32(&reply, 0) == -1 {
                let path_len = be_i32(&reply, 24).max(0) as usize;
                self.events.push((
                    be_i32(&reply, 16),
                    be_i32(&reply, 20),
                    reply[28..28 + path_len].to_vec(),
                ));
                continue;
            }
            return Some(reply);
        }
    }
}

/// Reads a reply body, recording what must match and masking the rest.
struct Masked<'a> {
    b: &'a [u8],
    at: usize,
    sessions: &'a BTreeMap<i64, usize>,
    out: String,
}

impl Masked<'_> {
    fn byte(&mut self) -> u8 {
        self.at += 1;
        self.b[self.at - 1]
    }
    fn int(&mut self) -> i32 {
        let v = be_i32(self.b, self.at);
        self.at += 4;
        v
    }
    fn long(&mut self) -> i64 {
        let v = be_i64(self.b, self.at);
        self.at += 8;
        v
    }
    fn buffer(&mut self) -> Option<Vec<u8>> {
        let len = self.int();
        if len < 0 {
            return None;
        }
        let v = self.b[self.at..self.at + len as usize].to_vec();
        self.at += len as usize;
        Some(v)
    }
    fn put(&mut self, what: impl std::fmt::Debug) {
        self.out.push_str(&format!("{what:?} "));
    }
    fn stat(&mut self) {
        let (czxid, mzxid, ctime, mtime) = (self.long(), self.long(), self.long(), self.long());
        let versions = (self.int(), self.int(), self.int());
        let owner = self.long();
        let owner = match self.sessions.get(&owner) {
            Some(i) => format!("session{i}"),
            None => format!("{owner:#x}"),
        };
        let (len, children, pzxid) = (self.int(), self.int(), self.long());
        // A node's ctime and mtime are equal while its creation is its last
        // change; after a later change they are equal only if both came in
        // the same millisecond, which depends on speed, not behaviour
        // (seed 111: zab did both in one millisecond, ZooKeeper not): then
        // only their order is compared.
        let times = if czxid == mzxid {
            ctime == mtime
        } else {
            mtime >= ctime
        };
        self.put((czxid, mzxid, times, versions, owner, len, children, pzxid));
    }
    /// A vector of strings, in the order it came: children and a
    /// session's ephemerals come in the order of ZooKeeper's hash sets,
    /// which zab keeps.
    fn strings(&mut self) {
        let n = self.int();
        let items: Vec<Option<Vec<u8>>> = (0..n.max(0)).map(|_| self.buffer()).collect();
        self.put((n, items));
    }
    fn result(&mut self, op: i32) {
        match op {
            1 | 9 => {
                let p = self.buffer();
                self.put(p);
            }
            15 | 19 | 21 => {
                let p = self.buffer();
                self.put(p);
                self.stat();
            }
            3 | 5 | 7 => self.stat(),
            4 => {
                let d = self.buffer();
                // An ensemble's /zookeeper/config names its own ports.
                let d = d.map(|d| match d.starts_with(b"server.") {
                    true => b"membership".to_vec(),
                    false => d,
                });
                self.put(d);
                self.stat();
            }
            8 | 103 => self.strings(),
            12 => {
                self.strings();
                self.stat();
            }
            6 => {
                let n = self.int();
                for _ in 0..n.max(0) {
                    let a = (self.int(), self.buffer(), self.buffer());
                    self.put(a);
                }
                self.stat();
            }
            104 => {
                let n = self.int();
                self.put(n);
            }
            107 => {
                let n = self.int();
                for _ in 0..n.max(0) {
                    let who = (self.buffer(), self.buffer());
                    self.put(who);
                }
            }
            14 | 22 => loop {
                // MultiHeader: type, done, err.
                let (t, done, err) = (self.int(), self.byte(), self.int());
                self.put((t, done, err));
                if done != 0 {
                    break;
                }
                match t {
                    -1 => {
                        let e = self.int();
                        self.put(e);
                    }
                    2 | 13 => {}
                    other => self.result(other),
                }
            },
            _ => {
                let rest = &self.b[self.at..];
                self.put(rest);
                self.at = self.b.len();
            }
        }
    }
}

/// Per request of the seed's sequence: the reply, masked, and the events
/// both sessions got because of it. Both sessions are on the server at
/// `addr`.
fn transcript(addr: SocketAddr, seed: u64, target: Target) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut sessions = [Session::open(addr), Session::open(addr)];
    let mut known: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &sessions {
        let n = known.len();
        known.insert(s.id, n);
    }
    let mut out = Vec::new();
    let mut preamble = preamble(seed).into_iter();
    for step in 0..STEPS {
        let (who, (op, body)) = match preamble.next() {
            Some(set_up) => (0, set_up),
            None => (below(&mut rng, 2), request(&mut rng)),
        };
        let request_hex: String = body.0.iter().map(|b| format!("{b:02x}")).collect();
        let (body, refuse) = match op {
            3 => exists_as_since_3_8_4(&mut sessions[who], body, target),
            _ => (body, false),
        };
        let line = match sessions[who].call(op, body) {
            None => {
                // The server closed the connection: a new session stands in.
                sessions[who] = Session::open(addr);
                let n = known.len();
                known.insert(sessions[who].id, n);
                "closed".to_string()
            }
            Some(mut reply) => {
                if refuse {
                    reply.truncate(16);
                    reply[12..16].copy_from_slice(&NO_AUTH.to_be_bytes());
                }
                let (xid, zxid, err) = (be_i32(&reply, 0), be_i64(&reply, 4), be_i32(&reply, 12));
                let mut m = Masked {
                    b: &reply[16..],
                    at: 0,
                    sessions: &known,
                    out: String::new(),
                };
                // A multiRead's MARSHALLINGERROR has a body too.
                if err == 0 || (op == 22 && reply.len() > 16) {
                    m.result(op);
                } else {
                    let rest = &reply[16..];
                    m.put(rest);
                }
                format!("xid {xid} zxid {zxid:#x} err {err}: {}", m.out)
            }
        };
        let other = 1 - who;
        let mut dropped = "";
        if sessions[other].call(11, Jute::default()).is_none() {
            sessions[other] = Session::open(addr);
            let n = known.len();
            known.insert(sessions[other].id, n);
            dropped = DROPPED;
        }
        let events: Vec<_> = sessions
            .iter_mut()
            .map(|s| std::mem::take(&mut s.events))
            .collect();
        out.push(format!(
            "step {step}, session {who}, op {op} {request_hex}\n  {line}\n  events {events:?}{dropped}"
        ));
    }
    out.push(server_state(addr, &known));
    out
}

const NO_AUTH: i32 = -102;

/// `exists` as ZooKeeper answers it since 3.8.4 and 3.9.2
/// (ZOOKEEPER-2590): a node that exists is refused with NOAUTH, and no
/// watch set, to a session that may not READ it. Debian's 3.8.0, the
/// oracle here, answered anyone. So the session first asks the oracle
/// itself whether it may read the node: a `getData` without a watch, sent
/// to both servers alike, checks READ on a node that exists, and answers
/// NOAUTH exactly when the later `exists` must. On that answer the oracle
/// gets the `exists` without its watch, and its Stat is read as the NOAUTH
/// 3.8.4 sends (the `true` returned): its connection counts one request and
/// one reply, as zab's does. zab gets the request unchanged.
fn exists_as_since_3_8_4(session: &mut Session, body: Jute, target: Target) -> (Jute, bool) {
    let path_len = be_i32(&body.0, 0) as usize;
    let path = &body.0[4..4 + path_len];
    let probe = Jute::default().buffer(path).boolean(false);
    let refused = session
        .call(4, probe)
        .is_some_and(|reply| be_i32(&reply, 12) == NO_AUTH);
    match (target, refused) {
        (Target::ZooKeeper, true) => (Jute::default().buffer(path).boolean(false), true),
        _ => (body, false),
    }
}

/// What the server reports of its state after the sequence, through the
/// four-letter words an operator reads: counts from `mntr` and `srvr`, the
/// watch table by session and by path, the ephemerals by session.
fn server_state(addr: SocketAddr, sessions: &BTreeMap<i64, usize>) -> String {
    let word = |w: &str| support::four_letter_word(addr, w).expect("four-letter word");
    let name_sessions = |text: String| {
        let mut text = text;
        for (id, i) in sessions {
            text = text.replace(&format!("0x{id:x}"), &format!("session{i}"));
        }
        text
    };
    // ZooKeeper counts a request as in process only after it has handed it
    // to its first processor (`ZooKeeperServer.submitRequestNow`:
    // `firstProcessor.processRequest(si)`, then `incInProcess()`), so its
    // final processor, on another thread, can count it out first: a
    // `mntr` or `srvr` read in between says -1 (seen once in 60 seeds, not
    // reproducible). A negative count is that race, read as 0; zab's count
    // cannot go below 0.
    let outstanding_race = |text: String| {
        text.replace(
            "zk_outstanding_requests\t-1\n",
            "zk_outstanding_requests\t0\n",
        )
        .replace("Outstanding: -1\n", "Outstanding: 0\n")
    };
    let mntr = outstanding_race(word("mntr"));
    // mntr's keys come in a hash order on ZooKeeper: sorted.
    let mut counts: Vec<&str> = mntr
        .lines()
        .filter(|l| {
            [
                "zk_znode_count",
                "zk_watch_count",
                "zk_ephemerals_count",
                "zk_approximate_data_size",
                "zk_global_sessions",
                "zk_outstanding_requests",
                "zk_last_client_response_size",
                "zk_min_client_response_size",
                "zk_max_client_response_size",
            ]
            .iter()
            .any(|k| l.split('\t').next() == Some(k))
                // The quota gauge and counter sets, by namespace.
                || l.contains("_quota_")
        })
        .collect();
    counts.sort();
    let srvr = outstanding_race(word("srvr"));
    // Not the server's Received and Sent: ZooKeeper's mntr answer alone is
    // three packets (529 keys against zab's 37), and a request written to a
    // connection its closeSession is closing counts on ZooKeeper or not by
    // a race.
    let zxid = srvr.lines().filter(|l| {
        ["Zxid", "Node count", "Outstanding"]
            .iter()
            .any(|k| l.starts_with(k))
    });
    // wchc and wchp list sessions and paths in hash order: sorted lines.
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let dump = word("dump");
    let ephemerals = dump
        .split("ephemeral nodes dump:\n")
        .nth(1)
        .and_then(|d| d.split("Connections dump:").next())
        .unwrap_or_default()
        .to_owned();
    // Each session's connection in `cons`: what it counted and last
    // answered (ports, times and latencies left out).
    let mut cons: Vec<String> = name_sessions(word("cons"))
        .lines()
        .filter_map(|l| {
            let fields = l.split_once('(')?.1.trim_end_matches(')');
            let kept: Vec<&str> = fields
                .split(',')
                .filter(|f| {
                    [
                        "recved=", "sent=", "sid=", "lop=", "to=", "lcxid=", "lzxid=",
                    ]
                    .iter()
                    .any(|k| f.starts_with(k))
                })
                .collect();
            kept.iter()
                .any(|f| f.starts_with("sid="))
                .then(|| kept.join(","))
        })
        .collect();
    cons.sort();
    format!(
        "state: {counts:?} {:?}\n  cons {cons:?}\n  wchs {:?}\n  wchc {:?}\n  wchp {:?}\n  ephemerals {:?}",
        zxid.collect::<Vec<_>>(),
        word("wchs"),
        sorted(name_sessions(word("wchc"))),
        sorted(name_sessions(word("wchp"))),
        sorted(name_sessions(ephemerals)),
    )
}

/// Marks a step after which the other session's connection was found
/// closed. Nothing the test sends on one session closes the other's, so the
/// server dropped it.
const DROPPED: &str = "\n  the other session's connection was dropped";

/// Runs `seed` on both servers (`run` gives a target's transcript) and
/// asserts they answered alike. ZooKeeper, the oracle, drops a client
/// connection when a starved machine stalls it: under two CPU hogs its
/// learner closed a session's connection mid-seed (seed 114), and the test
/// opened another session in its place. A seed whose ZooKeeper transcript
/// differs and shows such a drop is run again on both, at most twice more;
/// the last run must match. zab is never excused: a drop on its side is
/// compared like any other answer, and a run again repeats it.
fn assert_same_runs(seed: u64, run: impl Fn(Target) -> Vec<String>) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (zookeeper, zab) = (run(Target::ZooKeeper), run(Target::Zab));
        let oracle_dropped = zookeeper.iter().any(|l| l.ends_with(DROPPED));
        if zookeeper == zab || !oracle_dropped || attempts == 3 {
            return assert_same(seed, &zookeeper, &zab);
        }
        eprintln!("seed {seed}: ZooKeeper dropped a connection; running the seed again");
    }
}

/// The first differences between two transcripts of one seed, if any.
fn assert_same(seed: u64, zookeeper: &[String], zab: &[String]) {
    let differences: Vec<String> = zookeeper
        .iter()
        .zip(zab)
        .filter(|(z, b)| z != b)
        .take(3)
        .map(|(z, b)| format!("ZooKeeper: {z}\nzab:       {b}"))
        .collect();
    assert!(
        differences.is_empty(),
        "seed {seed}: zab answered differently\n{}",
        differences.join("\n")
    );
}

const CFG: &str = "tickTime=2000\nextendedTypesEnabled=true\nenforceQuota=true";

/// The two tests take turns: each starts JVMs, and a machine kept busy by
/// both could stall a server long enough to matter.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn random_requests_are_answered_as_zookeeper_answers_them() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds(1, SEEDS) {
        assert_same_runs(seed, |target| {
            let server = TestServer::start_target(target, CFG);
            let out = transcript(server.addr(), seed, target);
            assert!(server.four_letter_word("ruok").expect("ruok") == "imok");
            out
        });
    }
}

/// The same through a learner of a 3-voter ensemble with an observer:
/// writes forwarded to the leader, sessions created and closed by it,
/// reads answered by the learner. Even seeds go through a follower, odd
/// ones through the observer.
#[test]
fn random_requests_through_a_learner_are_answered_as_zookeeper_answers_them() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds(100, ENSEMBLE_SEEDS) {
        let learner = if seed % 2 == 0 {
            Mode::Follower
        } else {
            Mode::Observer
        };
        assert_same_runs(seed, |target| {
            let command = match target {
                Target::ZooKeeper => ServerCommand::zookeeper(),
                Target::Zab => ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")),
            };
            let mut spec = ClusterSpec::new(command, 3).with_observers(1);
            // Sessions of 30 s: no session of the test may expire on a
            // busy machine, or its closeSession would be an extra txn.
            spec.tick_time_ms = 2000;
            spec.extra_cfg = "extendedTypesEnabled=true\nenforceQuota=true\n".into();
            let mut ensemble = TestCluster::start(spec);
            ensemble.wait_until_serving(Duration::from_secs(60));
            let at = ensemble
                .indices()
                .find(|&i| ensemble.status(i).map(|s| s.mode) == Some(learner))
                .unwrap_or_else(|| panic!("no {learner:?}"));
            transcript(ensemble.addr(at), seed, target)
        });
    }
}

/// The retry rule itself, on made-up transcripts: a drop on ZooKeeper's
/// side earns the seed another run; the same drop on zab's side fails.
#[test]
fn only_the_oracles_dropped_connections_earn_a_run_again() {
    use std::cell::Cell;
    let step = |dropped: bool| {
        let mark = if dropped { DROPPED } else { "" };
        vec![format!(
            "step 0, session 0, op 4 00\n  xid 1\n  events [[], []]{mark}"
        )]
    };
    // ZooKeeper drops on its first run only: the second run is compared.
    let zk_runs = Cell::new(0);
    assert_same_runs(1, |target| match target {
        Target::ZooKeeper => {
            zk_runs.set(zk_runs.get() + 1);
            step(zk_runs.get() == 1)
        }
        Target::Zab => step(false),
    });
    assert_eq!(zk_runs.get(), 2);
    // zab drops: no run again, and the difference is reported.
    let zab_drops =
        std::panic::catch_unwind(|| assert_same_runs(2, |target| step(target == Target::Zab)));
    assert!(zab_drops.is_err());
    // ZooKeeper drops every time: after three runs the difference stands.
    let zk_runs = Cell::new(0);
    let oracle_always = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_same_runs(3, |target| {
            zk_runs.set(zk_runs.get() + u32::from(target == Target::ZooKeeper));
            step(target == Target::ZooKeeper)
        })
    }));
    assert!(oracle_always.is_err());
    assert_eq!(zk_runs.get(), 3);
}
