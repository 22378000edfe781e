//! Bad client input over raw TCP: garbage, truncated and oversized frames,
//! unknown opcodes, requests before the handshake and a bare `check`. After
//! each, the server must still answer `ruok` and an already-connected healthy
//! session must still create and read (architecture invariant: bad input gets
//! a clear error or a closed connection, never a panic or lost data).
//!
//! The frames are written byte by byte here (reference A–C) rather than with
//! `zab-wire`, so the test does not share the server's codec.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::raw::{be_i32, be_i64, Jute};
use support::{Target, TestServer};

/// `jute.maxbuffer` default: 0xFFFFF bytes (reference A).
const MAX_BUFFER: i32 = 0xF_FFFF;
const OP_CREATE: i32 = 1;
const OP_GET_DATA: i32 = 4;
const OP_DELETE: i32 = 2;
const OP_SET_DATA: i32 = 5;
const OP_CHECK: i32 = 13;
const OP_MULTI: i32 = 14;
const OP_CREATE2: i32 = 15;
const OP_CREATE_TTL: i32 = 21;
const OP_MULTI_READ: i32 = 22;
const OP_GET_ALL_CHILDREN_NUMBER: i32 = 104;
const OP_CHECK_WATCHES: i32 = 17;
const OP_ADD_WATCH: i32 = 106;
const ERR_MARSHALLING: i32 = -5;
const ERR_UNIMPLEMENTED: i32 = -6;
const ERR_BAD_ARGUMENTS: i32 = -8;
const ERR_NO_NODE: i32 = -101;
const ERR_NODE_EXISTS: i32 = -110;
/// How long the server gets to close a connection it should close.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// The parts of a ConnectResponse the tests look at (reference B).
#[derive(Debug)]
struct Session {
    timeout: i32,
    id: i64,
    password: Vec<u8>,
}

/// One raw client connection.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn open(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(CLOSE_WITHIN))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw { stream }
    }

    /// Opens a connection and performs the handshake for a new session, or
    /// resumes `resume` when given.
    fn connect(addr: SocketAddr, resume: Option<&Session>) -> (Raw, Session) {
        let mut raw = Raw::open(addr);
        let session = raw.handshake(resume);
        (raw, session)
    }

    fn handshake(&mut self, resume: Option<&Session>) -> Session {
        let (id, password) = match resume {
            Some(s) => (s.id, s.password.clone()),
            None => (0, vec![0; 16]),
        };
        let request = Jute::default()
            .int(0) // protocolVersion
            .long(0) // lastZxidSeen
            .int(30_000) // timeOut
            .long(id)
            .buffer(&password)
            .boolean(false) // readOnly
            .frame();
        self.send(&request);
        let body = self
            .read_frame()
            .expect("read ConnectResponse")
            .expect("server closed the connection instead of answering ConnectRequest");
        let timeout = be_i32(&body, 4);
        let id = be_i64(&body, 8);
        let len = be_i32(&body, 16).max(0) as usize;
        Session {
            timeout,
            id,
            password: body[20..20 + len].to_vec(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Reads one frame; `Ok(None)` when the server closed the connection.
    fn read_frame(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if is_closed(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = i32::from_be_bytes(len);
        assert!(
            (0..=MAX_BUFFER).contains(&len),
            "server sent frame length {len}"
        );
        let mut body = vec![0; len as usize];
        match self.stream.read_exact(&mut body) {
            Ok(()) => Ok(Some(body)),
            Err(e) if is_closed(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends a request and returns (xid, err, body) of its reply.
    fn call(&mut self, xid: i32, op: i32, body: Jute) -> (i32, i32, Vec<u8>) {
        let frame = Jute::default().int(xid).int(op);
        let mut frame = frame;
        frame.0.extend_from_slice(&body.0);
        self.send(&frame.frame());
        let reply = self
            .read_frame()
            .expect("read reply")
            .expect("connection closed before the reply");
        (be_i32(&reply, 0), be_i32(&reply, 12), reply[16..].to_vec())
    }

    fn create(&mut self, xid: i32, path: &str, data: &[u8]) -> i32 {
        let body = Jute::default()
            .buffer(path.as_bytes())
            .buffer(data)
            .int(1) // one ACL: world:anyone, all permissions
            .int(31)
            .buffer(b"world")
            .buffer(b"anyone")
            .int(0); // persistent
        let (got_xid, err, _) = self.call(xid, OP_CREATE, body);
        assert_eq!(got_xid, xid);
        err
    }

    fn get_data(&mut self, xid: i32, path: &str) -> Result<Vec<u8>, i32> {
        let body = Jute::default().buffer(path.as_bytes()).boolean(false);
        let (got_xid, err, reply) = self.call(xid, OP_GET_DATA, body);
        assert_eq!(got_xid, xid);
        if err != 0 {
            return Err(err);
        }
        let len = be_i32(&reply, 0).max(0) as usize;
        Ok(reply[4..4 + len].to_vec())
    }

    /// Asserts the server closes the connection (EOF or reset) within
    /// `CLOSE_WITHIN`, discarding whatever it sends first.
    fn expect_closed(&mut self, what: &str) {
        let deadline = Instant::now() + CLOSE_WITHIN;
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if is_closed(&e) => return,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("server kept the connection open after {what}")
                }
                Err(e) => panic!("reading after {what}: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "server kept sending and did not close after {what}"
            );
        }
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}

/// A server with long enough sessions for a raw client that never pings.
fn server() -> TestServer {
    TestServer::start("tickTime=2000")
}

/// The server still serves: `ruok` answers and the healthy session can write
/// and read back.
fn assert_healthy(server: &TestServer, healthy: &mut Raw, xid: &mut i32, tag: &str) {
    assert_eq!(
        server.four_letter_word("ruok").expect("ruok"),
        "imok",
        "after {tag}"
    );
    let path = format!("/healthy-{tag}");
    *xid += 1;
    assert_eq!(
        healthy.create(*xid, &path, tag.as_bytes()),
        0,
        "create after {tag}"
    );
    *xid += 1;
    assert_eq!(healthy.get_data(*xid, &path), Ok(tag.as_bytes().to_vec()));
}

#[test]
fn garbage_before_handshake() {
    let server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;

    // A negative length prefix.
    let mut raw = Raw::open(server.addr());
    raw.send(&[0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3, 4]);
    raw.expect_closed("a negative length prefix");
    assert_healthy(&server, &mut healthy, &mut xid, "negative-length");

    // Text: "GET " read as a length is far over jute.maxbuffer.
    let mut raw = Raw::open(server.addr());
    raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    raw.expect_closed("an HTTP request");
    assert_healthy(&server, &mut healthy, &mut xid, "http");

    // A well-framed ConnectRequest too short to decode.
    let mut raw = Raw::open(server.addr());
    raw.send(&Jute::default().int(0).int(7).frame());
    raw.expect_closed("a short ConnectRequest");
    assert_healthy(&server, &mut healthy, &mut xid, "short-connect");

    // Random-looking bytes (a fixed pseudo-random sequence, reproducible).
    let mut raw = Raw::open(server.addr());
    let mut x: u32 = 0x2545_F491;
    let junk: Vec<u8> = (0..512)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let mut framed = (junk.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&junk);
    raw.send(&framed);
    raw.expect_closed("a frame of random bytes");
    assert_healthy(&server, &mut healthy, &mut xid, "random");
}

#[test]
fn truncated_frames() {
    let server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;

    // Before the handshake: a length of 100, 10 bytes, then EOF.
    let mut raw = Raw::open(server.addr());
    raw.send(&100i32.to_be_bytes());
    raw.send(&[0; 10]);
    raw.stream.shutdown(Shutdown::Write).expect("half-close");
    raw.expect_closed("a truncated ConnectRequest");
    assert_healthy(&server, &mut healthy, &mut xid, "truncated-connect");

    // Inside a session: a create whose path claims more bytes than the frame holds.
    let (mut raw, _) = Raw::connect(server.addr(), None);
    let body = Jute::default().int(1).int(OP_CREATE).int(50).0;
    let mut frame = (body.len() as i32 + 4).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame.extend_from_slice(b"/abc");
    raw.send(&frame);
    // Observed on ZooKeeper 3.8.0: a record that does not decode gets a bare
    // MARSHALLINGERROR (-5) reply header and the connection stays usable.
    let reply = raw
        .read_frame()
        .expect("read reply")
        .expect("closed instead of answering a record cut short");
    assert_eq!(
        (be_i32(&reply, 0), be_i32(&reply, 12), reply.len()),
        (1, ERR_MARSHALLING, 16)
    );
    assert_eq!(
        raw.get_data(2, "/abc"),
        Err(ERR_NO_NODE),
        "nothing was created"
    );
    assert_healthy(&server, &mut healthy, &mut xid, "truncated-record");

    // Inside a session: half a frame, then EOF.
    let (mut raw, _) = Raw::connect(server.addr(), None);
    raw.send(&64i32.to_be_bytes());
    raw.send(&[0, 0, 0, 1]);
    raw.stream.shutdown(Shutdown::Write).expect("half-close");
    raw.expect_closed("half a request frame");
    assert_healthy(&server, &mut healthy, &mut xid, "truncated-request");
    assert_eq!(
        healthy.get_data(100, "/abc"),
        Err(ERR_NO_NODE),
        "nothing was created"
    );
}

#[test]
fn oversized_frames_close_the_connection_and_keep_the_session() {
    let server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;

    // Before the handshake.
    let mut raw = Raw::open(server.addr());
    raw.send(&(MAX_BUFFER + 1).to_be_bytes());
    raw.expect_closed("an oversized length before the handshake");
    assert_healthy(&server, &mut healthy, &mut xid, "oversized-connect");

    // Behaviour 16: in a session, the connection closes, nothing is written
    // and the session survives.
    let (mut raw, session) = Raw::connect(server.addr(), None);
    assert!(session.timeout > 0);
    raw.send(&(MAX_BUFFER + 1).to_be_bytes());
    raw.send(&Jute::default().int(5).int(OP_CREATE).buffer(b"/big").0);
    raw.expect_closed("an oversized request length");
    assert_healthy(&server, &mut healthy, &mut xid, "oversized-request");
    assert_eq!(
        healthy.get_data(100, "/big"),
        Err(ERR_NO_NODE),
        "nothing was created"
    );

    let (mut resumed, again) = Raw::connect(server.addr(), Some(&session));
    assert_eq!(again.id, session.id, "resumed the same session");
    assert!(again.timeout > 0, "session survived: {again:?}");
    assert_eq!(resumed.create(1, "/after-oversized", b"ok"), 0);
}

/// Requests that arrive in the same read as a bad frame length after them
/// are still carried out before the connection closes, as ZooKeeper reads
/// and submits one request at a time before it checks the next length.
#[test]
fn requests_before_an_oversized_length_in_the_same_write_are_carried_out() {
    let server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let (mut raw, _) = Raw::connect(server.addr(), None);
    let mut bytes = Vec::new();
    for (xid, path) in [(1, "/first"), (2, "/second")] {
        let mut frame = Jute::default().int(xid).int(OP_CREATE);
        frame.0.extend_from_slice(
            &Jute::default()
                .buffer(path.as_bytes())
                .buffer(b"v")
                .int(1)
                .int(31)
                .buffer(b"world")
                .buffer(b"anyone")
                .int(0)
                .0,
        );
        bytes.extend_from_slice(&frame.frame());
    }
    bytes.extend_from_slice(&(MAX_BUFFER + 1).to_be_bytes());
    raw.send(&bytes);
    raw.expect_closed("an oversized length after two creates");
    // Another session's writes: visible to this one once committed, so
    // look until a deadline.
    let deadline = Instant::now() + CLOSE_WITHIN;
    let mut xid = 0;
    for path in ["/first", "/second"] {
        loop {
            xid += 1;
            match healthy.get_data(xid, path) {
                Ok(data) => {
                    assert_eq!(data, b"v", "{path}");
                    break;
                }
                Err(err) => assert!(
                    err == ERR_NO_NODE && Instant::now() < deadline,
                    "{path} was not created: error {err}"
                ),
            }
        }
    }
}

#[test]
fn unknown_opcode_gets_unimplemented_then_close() {
    let server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;

    for op in [999, 42, -55] {
        let (mut raw, _) = Raw::connect(server.addr(), None);
        // Behaviour 17 (and 18: the error reply is the bare header). Its
        // zxid is -1: `UnimplementedRequestProcessor` answers with the
        // request's, which nothing set, so a client keeps the last zxid
        // it saw.
        let mut frame = Jute::default().int(7).int(op);
        frame.0.extend_from_slice(&Jute::default().buffer(b"/x").0);
        raw.send(&frame.frame());
        let reply = raw.read_frame().expect("read").expect("a reply");
        let (got_xid, zxid, err) = (be_i32(&reply, 0), be_i64(&reply, 4), be_i32(&reply, 12));
        assert_eq!(
            (got_xid, zxid, err),
            (7, -1, ERR_UNIMPLEMENTED),
            "opcode {op}"
        );
        assert_eq!(reply.len(), 16, "error reply with a body: {reply:?}");
        raw.expect_closed(&format!("unknown opcode {op}"));
        assert_healthy(&server, &mut healthy, &mut xid, &format!("op{op}"));
    }
}

/// A write whose body does not decode still uses up a zxid: ZooKeeper takes
/// the zxid before it reads the body and logs an error txn in its place
/// (reference C; checked on 3.8.0). So the MARSHALLINGERROR reply carries a
/// new zxid, and so does every later reply. Bad bodies of reads and of
/// watch requests take none.
#[test]
fn an_undecodable_write_uses_up_a_zxid() {
    let server = server();
    let (mut raw, _) = Raw::connect(server.addr(), None);
    // (xid, err, zxid, body length) of the reply to one request.
    let mut call = |xid: i32, op: i32, body: Jute| {
        let mut frame = Jute::default().int(xid).int(op);
        frame.0.extend_from_slice(&body.0);
        raw.send(&frame.frame());
        let reply = raw.read_frame().expect("read").expect("open");
        (
            be_i32(&reply, 0),
            be_i32(&reply, 12),
            be_i64(&reply, 4),
            reply.len() - 16,
        )
    };
    let root = || Jute::default().buffer(b"/").boolean(false);
    let (_, err, z, _) = call(1, OP_GET_DATA, root());
    assert_eq!(err, 0);

    // A create without its flags, a setData without its version, a multi
    // holding a read: each a bare -5 with the next zxid.
    let create = Jute::default()
        .buffer(b"/u")
        .buffer(b"")
        .int(1)
        .int(31)
        .buffer(b"world")
        .buffer(b"anyone");
    assert_eq!(call(2, OP_CREATE, create), (2, ERR_MARSHALLING, z + 1, 0));
    let set_data = Jute::default().buffer(b"/").buffer(b"x");
    assert_eq!(
        call(3, OP_SET_DATA, set_data),
        (3, ERR_MARSHALLING, z + 2, 0)
    );
    let multi = Jute::default()
        .int(OP_GET_DATA)
        .boolean(false)
        .int(-1)
        .buffer(b"/")
        .boolean(false)
        .int(-1)
        .boolean(true)
        .int(-1);
    assert_eq!(call(4, OP_MULTI, multi), (4, ERR_MARSHALLING, z + 3, 0));

    // Reads and watch requests are not txns: no zxid for their bad bodies.
    let cut = Jute::default().int(10);
    assert_eq!(call(5, OP_GET_DATA, cut), (5, ERR_MARSHALLING, z + 3, 0));
    let add_watch = Jute::default().buffer(b"/").int(2); // no such mode
    assert_eq!(
        call(6, OP_ADD_WATCH, add_watch),
        (6, ERR_MARSHALLING, z + 3, 0)
    );
    let check = Jute::default().buffer(b"/").int(0); // no such watcher type
    assert_eq!(
        call(7, OP_CHECK_WATCHES, check),
        (7, ERR_MARSHALLING, z + 3, 0)
    );
    let (_, err, z_after, _) = call(8, OP_GET_DATA, root());
    assert_eq!((err, z_after), (0, z + 3));
    assert!(server.four_letter_word("ruok").expect("ruok") == "imok");
}

/// Requests no ZooKeeper client library sends, answered as ZooKeeper
/// answers them (each checked on 3.8.0): reads of "" find the root (its
/// `DataTree` keeps the root under "" too) and reads of a null path fail;
/// inside a multi, a create's flags pick its opcode; a createTTL without a
/// TTL mode and with a negative ttl goes through every other check.
#[test]
fn odd_requests_are_answered_as_zookeeper_answers_them() {
    let server = TestServer::start("tickTime=2000\nextendedTypesEnabled=true");
    let (mut raw, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;
    // (err, zxid, body) of the reply to one request.
    let mut call = |op: i32, body: Jute| {
        xid += 1;
        let mut frame = Jute::default().int(xid).int(op);
        frame.0.extend_from_slice(&body.0);
        raw.send(&frame.frame());
        let reply = raw.read_frame().expect("read").expect("open");
        assert_eq!(be_i32(&reply, 0), xid);
        (be_i32(&reply, 12), be_i64(&reply, 4), reply[16..].to_vec())
    };
    let path = |p: &[u8]| Jute::default().buffer(p);

    // "" is the root for reads; a null path is not a path.
    let (err, _, root) = call(OP_GET_DATA, path(b"").boolean(false));
    assert_eq!(err, 0);
    let (_, _, slash) = call(OP_GET_DATA, path(b"/").boolean(false));
    assert_eq!(root, slash, "getData of \"\" is the root's");
    let (_, _, all) = call(OP_GET_ALL_CHILDREN_NUMBER, path(b"/"));
    let (_, _, all_of_empty) = call(OP_GET_ALL_CHILDREN_NUMBER, path(b""));
    assert_eq!(
        be_i32(&all_of_empty, 0),
        be_i32(&all, 0) + 1,
        "\"/\" itself counted"
    );
    let null = Jute::default().int(-1).boolean(false);
    assert_eq!(call(OP_GET_DATA, null).0, ERR_MARSHALLING);
    // A delete of a null path fails the same way, as a txn (a new zxid);
    // a setData of one is a bad path, "".
    let (_, z, _) = call(OP_GET_DATA, path(b"/").boolean(false));
    let (err, z_delete, _) = call(OP_DELETE, Jute::default().int(-1).int(-1));
    assert_eq!((err, z_delete), (ERR_MARSHALLING, z + 1));
    let set_data_null = || Jute::default().int(-1).int(-1).int(-1);
    assert_eq!(call(OP_SET_DATA, set_data_null()).0, ERR_BAD_ARGUMENTS);

    // Inside a multi the flags pick the opcode, and so the result's type.
    let open_acl = |j: Jute| j.int(1).int(31).buffer(b"world").buffer(b"anyone");
    let multi = |op: i32, body: Jute| {
        let mut m = Jute::default().int(op).boolean(false).int(-1);
        m.0.extend_from_slice(&body.0);
        m.int(-1).boolean(true).int(-1)
    };
    let create = |p: &[u8], flags: i32| open_acl(path(p).buffer(b"")).int(flags);
    // op 1 with the container flag: a createContainer, whose result is a
    // `CreateResult` with path and Stat (header type 15).
    let (err, _, body) = call(OP_MULTI, multi(OP_CREATE, create(b"/c1", 4)));
    assert_eq!((err, be_i32(&body, 0)), (0, OP_CREATE2), "{body:?}");
    assert_eq!(body.len(), 9 + 4 + 3 + 68 + 9, "path and Stat: {body:?}");
    // op 21 with a plain mode: a create, its ttl dropped, the path alone.
    let (err, _, body) = call(OP_MULTI, multi(OP_CREATE_TTL, create(b"/p1", 0).long(5)));
    assert_eq!((err, be_i32(&body, 0)), (0, OP_CREATE), "{body:?}");
    assert_eq!(body.len(), 9 + 4 + 3 + 9, "the path alone: {body:?}");
    // op 1 with a TTL mode has no ttl: the whole multi fails, as a txn.
    let (_, z, _) = call(OP_GET_DATA, path(b"/").boolean(false));
    let (err, z_failed, body) = call(OP_MULTI, multi(OP_CREATE, create(b"/t1", 5)));
    assert_eq!((err, z_failed, body.len()), (ERR_MARSHALLING, z + 1, 0));
    // A null path inside a multi or a multiRead fails the whole request,
    // whatever the op (setData's and check's too, unlike outside a multi)
    // and never reads the root. (ZooKeeper answers with an empty multi
    // response and uses no zxid; zab with no body, and a multi's error
    // txn, as for its other undecodable multis. Left so.)
    for (op, body) in [
        (OP_MULTI, multi(OP_DELETE, Jute::default().int(-1).int(-1))),
        (OP_MULTI, multi(OP_SET_DATA, set_data_null())),
        (OP_MULTI, multi(OP_CHECK, Jute::default().int(-1).int(-1))),
        (
            OP_MULTI,
            multi(
                OP_CREATE,
                open_acl(Jute::default().int(-1).buffer(b"")).int(0),
            ),
        ),
        (
            OP_MULTI_READ,
            multi(OP_GET_DATA, Jute::default().int(-1).boolean(false)),
        ),
    ] {
        let (err, _, body) = call(op, body);
        let empty_multi = [255, 255, 255, 255, 1, 255, 255, 255, 255];
        assert_eq!(err, ERR_MARSHALLING, "{body:?}");
        assert!(body.is_empty() || body == empty_multi, "{body:?}");
    }

    // createTTL with a plain mode and a negative ttl: the later checks
    // answer (NONODE, NODEEXISTS). (ZooKeeper 3.8.0 exits when they all
    // pass, so that case is not sent here.) A ttl ≥ 0 is refused first.
    let create_ttl = |p: &[u8], ttl: i64| create(p, 0).long(ttl);
    assert_eq!(
        call(OP_CREATE_TTL, create_ttl(b"/nope/x", -1)).0,
        ERR_NO_NODE
    );
    assert_eq!(
        call(OP_CREATE_TTL, create_ttl(b"/zookeeper", -1)).0,
        ERR_NODE_EXISTS
    );
    assert_eq!(
        call(OP_CREATE_TTL, create_ttl(b"/nope/x", 5)).0,
        ERR_BAD_ARGUMENTS
    );
    assert!(server.four_letter_word("ruok").expect("ruok") == "imok");
}

#[test]
fn request_before_connect_request() {
    let server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;

    // A getData frame as the very first frame: read as a ConnectRequest it is
    // nonsense, so the server must drop the connection without a session.
    let mut raw = Raw::open(server.addr());
    let frame = Jute::default()
        .int(1)
        .int(OP_GET_DATA)
        .buffer(b"/zookeeper")
        .boolean(false)
        .frame();
    raw.send(&frame);
    raw.expect_closed("a request before ConnectRequest");
    assert_healthy(&server, &mut healthy, &mut xid, "pre-connect");

    // A create as first frame must not create anything.
    let mut raw = Raw::open(server.addr());
    let frame = Jute::default()
        .int(1)
        .int(OP_CREATE)
        .buffer(b"/sneaky")
        .buffer(b"")
        .int(1)
        .int(31)
        .buffer(b"world")
        .buffer(b"anyone")
        .int(0)
        .frame();
    raw.send(&frame);
    raw.expect_closed("a create before ConnectRequest");
    assert_healthy(&server, &mut healthy, &mut xid, "pre-connect-create");
    assert_eq!(healthy.get_data(100, "/sneaky"), Err(ERR_NO_NODE));
}

#[test]
fn bare_check_outside_multi_is_rejected() {
    let mut server = server();
    let (mut healthy, _) = Raw::connect(server.addr(), None);
    let mut xid = 0;
    assert_eq!(healthy.create(1, "/checked", b"v"), 0);

    let (mut raw, _) = Raw::connect(server.addr(), None);
    let check = Jute::default()
        .int(9)
        .int(OP_CHECK)
        .buffer(b"/checked")
        .int(0);
    match server.target() {
        Target::Zab => {
            // Behaviour 19, as ZooKeeper 3.8.5+/3.9.3+ do it: -6 then close.
            raw.send(&check.frame());
            let reply = raw
                .read_frame()
                .expect("read reply")
                .expect("closed without a reply");
            assert_eq!(
                (be_i32(&reply, 0), be_i32(&reply, 12)),
                (9, ERR_UNIMPLEMENTED)
            );
            raw.expect_closed("a bare check");
        }
        Target::ZooKeeper => {
            // ZooKeeper 3.8.0 neither replies nor closes and logs a txn that
            // makes its log unreplayable (reference §0), so only the health
            // checks below apply to it.
            raw.send(&check.frame());
        }
    }
    assert_healthy(&server, &mut healthy, &mut xid, "bare-check");
    assert_eq!(healthy.get_data(200, "/checked"), Ok(b"v".to_vec()));

    if server.target() == Target::Zab {
        // Nothing was logged that breaks recovery: the server restarts with its data.
        drop(healthy);
        server.kill9();
        server.restart();
        let (mut after, _) = Raw::connect(server.addr(), None);
        assert_eq!(after.get_data(1, "/checked"), Ok(b"v".to_vec()));
    }
}

#[test]
fn connections_over_max_client_cnxns_are_closed_and_the_rest_keep_working() {
    // maxClientCnxns counts concurrent connections from one address
    // (reference B); the new one is closed at once, the server stays up.
    let server = TestServer::start("tickTime=2000\nmaxClientCnxns=3");
    let mut held: Vec<(Raw, Session)> = (0..3).map(|_| Raw::connect(server.addr(), None)).collect();
    let mut extra = Raw::open(server.addr());
    extra.expect_closed("a connection over maxClientCnxns");
    let mut xid = 0;
    for (raw, _) in held.iter_mut() {
        assert_healthy_raw(raw, &mut xid);
    }
    // A freed slot can be used again.
    held.pop();
    let mut again = poll_connect(&server);
    assert_healthy_raw(&mut again, &mut xid);
}

fn assert_healthy_raw(raw: &mut Raw, xid: &mut i32) {
    *xid += 1;
    let path = format!("/cnxn-{xid}");
    assert_eq!(raw.create(*xid, &path, b"x"), 0);
    *xid += 1;
    assert_eq!(raw.get_data(*xid, &path), Ok(b"x".to_vec()));
}

/// Connects once the server has noticed a closed connection (it frees the
/// slot when it sees EOF, which is not instantaneous).
fn poll_connect(server: &TestServer) -> Raw {
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut raw = Raw::open(server.addr());
        let connect = support::raw::connect_request(10_000, 0, &[0; 16])
            .boolean(false)
            .frame();
        raw.send(&connect);
        match raw.read_frame() {
            Ok(Some(_)) => return raw,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => panic!("could not connect again: {other:?}"),
        }
    }
}

/// The `recved` count `cons` lists for the connection of `session`.
fn packets_received(server: &TestServer, session: i64) -> u64 {
    let cons = server.four_letter_word("cons").expect("cons");
    let line = cons
        .lines()
        .find(|l| l.contains(&format!("sid=0x{session:x}")))
        .unwrap_or_else(|| panic!("no connection of session 0x{session:x} in:\n{cons}"));
    let at = line.find("recved=").expect("recved=") + "recved=".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("recved count")
}

#[test]
fn a_client_that_never_reads_its_replies_is_no_longer_read() {
    // ZooKeeper keeps reading such a client and queues its replies without
    // bound; zab stops reading it once its unwritten replies pass a few MiB
    // (zab-server `client_flow`), so its requests wait in the socket.
    let server = server();
    if server.target() == Target::ZooKeeper {
        return;
    }
    let (mut raw, session) = Raw::connect(server.addr(), None);
    let value = vec![b'v'; 256 << 10];
    assert_eq!(raw.create(1, "/big", &value), 0);
    // 4,000 reads of 256 KiB: 1 GiB of replies, from 84 KB of requests
    // that the socket buffers take without the server reading them.
    const READS: i32 = 4_000;
    let mut requests = Vec::new();
    for xid in 2..2 + READS {
        let req = Jute::default()
            .int(xid)
            .int(OP_GET_DATA)
            .buffer(b"/big")
            .boolean(false);
        requests.extend_from_slice(&req.frame());
    }
    raw.send(&requests);
    // A server that kept reading would take all of them within this
    // deadline. zab hands its core 64 at a time (16 MiB of replies) and
    // only while under 4 MiB are unwritten, so what the sockets' kernel
    // buffers (a few MiB each way on loopback) drain lets a few batches
    // through at most.
    let before = 2; // the ConnectRequest and the create
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut most = 0;
    while Instant::now() < deadline {
        most = most.max(packets_received(&server, session.id));
        assert!(
            most <= before + 512,
            "the server took {most} requests from a client that reads nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(most > before, "the server read none of the requests");
    // Reading the replies lets the server read the rest: every one comes,
    // in order, and other clients were served meanwhile.
    let (mut other, _) = Raw::connect(server.addr(), None);
    assert_eq!(other.get_data(1, "/zookeeper/quota").map(|_| ()), Ok(()));
    for xid in 2..2 + READS {
        let reply = raw.read_frame().expect("read reply").expect("reply");
        assert_eq!((be_i32(&reply, 0), be_i32(&reply, 12)), (xid, 0));
        assert_eq!(be_i32(&reply, 16), value.len() as i32);
    }
    assert_eq!(packets_received(&server, session.id), before + READS as u64);
}

#[test]
fn a_tiny_global_outstanding_limit_still_answers_every_request_in_order() {
    // globalOutstandingLimit=1: past one outstanding request server-wide,
    // a connection with requests of its own outstanding is not read until
    // one is answered (ZooKeeper's ServerCnxn throttle). Two clients
    // pipelining writes and reads must still get every answer, in order.
    let server = TestServer::start("tickTime=2000\nglobalOutstandingLimit=1");
    let mut clients: Vec<Raw> = (0..2)
        .map(|_| Raw::connect(server.addr(), None).0)
        .collect();
    const REQUESTS: i32 = 300;
    for (c, raw) in clients.iter_mut().enumerate() {
        let mut batch = Vec::new();
        for xid in 1..=REQUESTS {
            // Odd xids create a node; each even one reads the one before.
            let path = format!("/throttled-{c}-{}", xid - 1 + xid % 2);
            let req = if xid % 2 == 1 {
                Jute::default()
                    .int(xid)
                    .int(OP_CREATE)
                    .buffer(path.as_bytes())
                    .buffer(b"d")
                    .int(1)
                    .int(31)
                    .buffer(b"world")
                    .buffer(b"anyone")
                    .int(0)
            } else {
                Jute::default()
                    .int(xid)
                    .int(OP_GET_DATA)
                    .buffer(path.as_bytes())
                    .boolean(false)
            };
            batch.extend_from_slice(&req.frame());
        }
        raw.send(&batch);
    }
    for raw in &mut clients {
        for xid in 1..=REQUESTS {
            let reply = raw.read_frame().expect("read reply").expect("reply");
            assert_eq!(
                (be_i32(&reply, 0), be_i32(&reply, 12)),
                (xid, 0),
                "xid {xid}"
            );
        }
    }
}

/// `stmk` off the whitelist (as by default: ZooKeeper's default whitelist
/// is `srvr` alone) is refused at once, before the 8 bytes of its mask: a client
/// that sends the word alone is answered, not left waiting until the
/// connection times out, as `NIOServerCnxn.checkFourLetterWord` checks the
/// whitelist first.
#[test]
fn a_four_letter_word_off_the_whitelist_is_refused_at_once() {
    // `ruok` for the harness, which waits on it.
    let server = TestServer::start("4lw.commands.whitelist=srvr, ruok");
    let mut sock = TcpStream::connect(server.addr()).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sock.write_all(b"stmk").expect("write");
    let mut answer = String::new();
    sock.read_to_string(&mut answer)
        .expect("answered within 5 s");
    assert_eq!(
        answer,
        "stmk is not executed because it is not in the whitelist.\n"
    );
}
