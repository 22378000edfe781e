//! A client that connects while its server cannot serve (it has lost its
//! quorum and is electing) is held, not closed, and answered on the same
//! connection once the server serves again (`zab.connectHoldMs`,
//! `zab-server/src/held_clients.rs`). ZooKeeper closes such a connection
//! at once, so this test is zab's alone.
//!
//! The client here is a raw socket with hand-built frames, so that nothing
//! can reconnect behind the test's back: with the connection closed instead
//! of held, the read below sees end-of-file and the test fails.

#[path = "support/cluster.rs"]
mod cluster;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cluster::{ClusterSpec, Mode, ServerCommand, TestCluster};

const WITHIN: Duration = Duration::from_secs(60);

/// A ConnectRequest frame: protocol 0, lastZxidSeen 0, timeout 30 s, new
/// session, 16-byte zero password, readOnly false (reference B).
fn connect_request() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&30_000i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&16i32.to_be_bytes());
    body.extend_from_slice(&[0u8; 16]);
    body.push(0);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Polls `cond` until it holds; panics with `what` after [`WITHIN`].
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WITHIN;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn a_client_connecting_during_an_election_is_answered_once_a_quorum_forms() {
    if matches!(
        std::env::var("ZAB_TEST_TARGET").as_deref(),
        Ok("zookeeper") | Ok("zk")
    ) {
        eprintln!("skipped: ZooKeeper closes such connections (zab holds them)");
        return;
    }
    let mut spec = ClusterSpec::new(ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")), 3);
    // Long enough that the hold cannot run out while a server restarts on
    // a slow machine: the test is about holding, not about the default.
    spec.extra_cfg = "zab.connectHoldMs=60000".into();
    let mut c = TestCluster::start(spec);
    c.wait_until_serving(WITHIN);

    // Two of three down: the survivor loses its quorum and stops serving.
    let (survivor, a, b) = (0, 1, 2);
    c.stop(a);
    c.stop(b);
    eventually("the survivor stops serving", || {
        c.status(survivor).map(|s| s.mode) == Some(Mode::NotServing)
    });

    let mut sock = TcpStream::connect(c.addr(survivor)).expect("connect");
    sock.write_all(&connect_request())
        .expect("send ConnectRequest");

    // A quorum again: the survivor serves, and answers the held request.
    c.restart(a);
    c.wait_until_serving(WITHIN);
    sock.set_read_timeout(Some(WITHIN)).expect("read timeout");
    let mut len = [0u8; 4];
    sock.read_exact(&mut len)
        .expect("a ConnectResponse on the held connection, not a close");
    let len = i32::from_be_bytes(len);
    assert!((36..=64).contains(&len), "ConnectResponse length {len}");
    let mut body = vec![0u8; len as usize];
    sock.read_exact(&mut body).expect("ConnectResponse body");
    let field = |at: usize, n: usize| -> i64 {
        body[at..at + n]
            .iter()
            .fold(0i64, |v, b| (v << 8) | i64::from(*b))
    };
    let timeout = field(4, 4);
    let session = field(8, 8);
    assert!(timeout > 0, "negotiated timeout {timeout}");
    assert_ne!(session, 0, "a session was created");
}
