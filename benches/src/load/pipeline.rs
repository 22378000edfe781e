//! One connection's request window: the pure core of a session.
//!
//! The pipeline numbers requests with increasing xids, frames them into an
//! output buffer, and matches reply frames to what is outstanding. It owns no
//! socket and no clock: the caller passes `now` in, so it is tested with
//! plain values.
//!
//! ZooKeeper answers a connection's requests strictly in the order they were
//! sent, and the Java client drops the connection when a reply is not for
//! its oldest pending xid (reference C, "Headers"; D.6). The pipeline is as
//! strict, so a server that reorders replies fails the run instead of
//! producing figures real clients could not get. Pings (xid -2) and
//! notifications (xid -1) are recognised by xid wherever they come.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zab_wire::jute::{
    encode_frame, xid, ConnectRequest, ConnectResponse, DecodeError, Jute, Reader, ReplyHeader,
    Request, Response,
};

use super::workload::OpClass;

/// A reply that does not fit the conversation.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("undecodable reply: {0}")]
    Decode(#[from] DecodeError),
    #[error("reply with xid {got} while the oldest pending xid is {expected:?}")]
    OutOfOrder { got: i32, expected: Option<i32> },
    #[error("session refused or expired (negotiated timeout {0})")]
    SessionRefused(i32),
}

/// What a reply frame meant.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The reply to a request sent with [`Pipeline::submit`].
    Done(Completion),
    /// The reply to a ping.
    Pong,
    /// A watch notification (the generator sets no watches; ignored).
    Notification,
}

/// One finished request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub class: OpClass,
    pub latency: Duration,
    /// The reply header's error code; 0 is success.
    pub err: i32,
    /// The decoded body of a success.
    pub response: Option<Response>,
}

#[derive(Debug, Clone)]
struct Pending {
    xid: i32,
    op: i32,
    class: OpClass,
    sent: Instant,
}

/// The outstanding requests of one session.
#[derive(Debug, Default)]
pub struct Pipeline {
    next_xid: i32,
    window: VecDeque<Pending>,
    pings: usize,
}

/// The first frame of a connection: a new session asking for `timeout_ms`.
pub fn connect_frame(timeout_ms: i32, out: &mut BytesMut) {
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: timeout_ms,
        session_id: 0,
        // A new session sends 16 zero bytes (reference B).
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    encode_frame(&req.encode(), out);
}

/// The server's answer to [`connect_frame`]; a timeout of 0 or less means
/// no session (reference B).
pub fn connect_reply(frame: Bytes) -> Result<ConnectResponse, ProtocolError> {
    let resp = ConnectResponse::decode(frame)?;
    if resp.time_out <= 0 {
        return Err(ProtocolError::SessionRefused(resp.time_out));
    }
    Ok(resp)
}

impl Pipeline {
    pub fn new() -> Self {
        Pipeline {
            // Xids start at 1, as ZooKeeper's own clients do.
            next_xid: 1,
            window: VecDeque::new(),
            pings: 0,
        }
    }

    /// Requests sent and not answered yet (pings excluded).
    pub fn outstanding(&self) -> usize {
        self.window.len()
    }

    /// Nothing outstanding, pings included.
    pub fn is_idle(&self) -> bool {
        self.window.is_empty() && self.pings == 0
    }

    /// Frames `req` into `out` and remembers it; returns its xid.
    pub fn submit(
        &mut self,
        class: OpClass,
        req: &Request,
        now: Instant,
        out: &mut BytesMut,
    ) -> i32 {
        let xid = self.next_xid;
        // Positive xids only: negative ones are reserved (pings, events).
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        encode_frame(&req.encode_with_header(xid), out);
        self.window.push_back(Pending {
            xid,
            op: req.op(),
            class,
            sent: now,
        });
        xid
    }

    /// Frames a ping (xid -2, op 11).
    pub fn ping(&mut self, out: &mut BytesMut) {
        encode_frame(&Request::Ping.encode_with_header(xid::PING), out);
        self.pings += 1;
    }

    /// Interprets one reply frame received at `now`.
    pub fn on_reply(&mut self, frame: Bytes, now: Instant) -> Result<Reply, ProtocolError> {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r)?;
        match header.xid {
            xid::PING => {
                self.pings = self.pings.saturating_sub(1);
                return Ok(Reply::Pong);
            }
            xid::NOTIFICATION => return Ok(Reply::Notification),
            _ => {}
        }
        let expected = self.window.front().map(|p| p.xid);
        if expected != Some(header.xid) {
            return Err(ProtocolError::OutOfOrder {
                got: header.xid,
                expected,
            });
        }
        let Some(p) = self.window.pop_front() else {
            return Err(ProtocolError::OutOfOrder {
                got: header.xid,
                expected,
            });
        };
        let response = if header.err == 0 {
            Some(Response::decode(p.op, r.rest())?)
        } else {
            None
        };
        Ok(Reply::Done(Completion {
            class: p.class,
            latency: now.saturating_duration_since(p.sent),
            err: header.err,
            response,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::jute::{
        FrameDecoder, GetDataResponse, PathWatchRequest, RequestHeader, Stat, StatResponse,
    };

    fn get(path: &str) -> Request {
        Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        })
    }

    fn reply(xid: i32, err: i32, body: Option<Response>) -> Bytes {
        let header = ReplyHeader { xid, zxid: 7, err };
        match body {
            Some(b) => b.encode_reply(header),
            None => header.encode(),
        }
    }

    #[test]
    fn frames_requests_with_increasing_xids() {
        let mut p = Pipeline::new();
        let mut out = BytesMut::new();
        let t = Instant::now();
        assert_eq!(p.submit(OpClass::Get, &get("/a"), t, &mut out), 1);
        assert_eq!(p.submit(OpClass::Get, &get("/b"), t, &mut out), 2);
        assert_eq!(p.outstanding(), 2);
        let dec = FrameDecoder::default();
        for (want_xid, want_path) in [(1, "/a"), (2, "/b")] {
            let frame = dec.decode(&mut out).unwrap().unwrap();
            let mut r = Reader::new(frame);
            let h = RequestHeader::read(&mut r).unwrap();
            assert_eq!(h.xid, want_xid);
            let req = Request::decode(h.op, r.rest()).unwrap();
            assert_eq!(req, get(want_path));
        }
        assert!(out.is_empty());
    }

    #[test]
    fn matches_replies_and_measures_latency() {
        let mut p = Pipeline::new();
        let mut out = BytesMut::new();
        let t0 = Instant::now();
        let x1 = p.submit(OpClass::Get, &get("/a"), t0, &mut out);
        let x2 = p.submit(
            OpClass::Get,
            &get("/b"),
            t0 + Duration::from_millis(1),
            &mut out,
        );
        let body = Response::GetData(GetDataResponse {
            data: Some(Bytes::from_static(b"xyz")),
            stat: Stat::default(),
        });
        let done = p
            .on_reply(
                reply(x1, 0, Some(body.clone())),
                t0 + Duration::from_millis(5),
            )
            .unwrap();
        assert_eq!(
            done,
            Reply::Done(Completion {
                class: OpClass::Get,
                latency: Duration::from_millis(5),
                err: 0,
                response: Some(body),
            })
        );
        // An error reply has no body.
        let Reply::Done(c) = p
            .on_reply(reply(x2, -101, None), t0 + Duration::from_millis(3))
            .unwrap()
        else {
            panic!("not a completion")
        };
        assert_eq!(
            (c.err, c.latency, c.response),
            (-101, Duration::from_millis(2), None)
        );
        assert!(p.is_idle());
    }

    #[test]
    fn refuses_out_of_order_and_unknown_replies_like_the_java_client() {
        let mut p = Pipeline::new();
        let mut out = BytesMut::new();
        let t = Instant::now();
        let set = Request::SetData(zab_wire::jute::SetDataRequest {
            path: "/k".into(),
            data: None,
            version: -1,
        });
        let x1 = p.submit(OpClass::Set, &set, t, &mut out);
        let x2 = p.submit(OpClass::Set, &set, t, &mut out);
        let ok = || Some(Response::Stat(StatResponse::default()));
        assert!(matches!(
            p.on_reply(reply(x2, 0, ok()), t),
            Err(ProtocolError::OutOfOrder { got, expected: Some(e) }) if got == x2 && e == x1
        ));
        assert!(matches!(
            p.on_reply(reply(x1, 0, ok()), t),
            Ok(Reply::Done(_))
        ));
        assert!(matches!(
            p.on_reply(reply(x2, 0, ok()), t),
            Ok(Reply::Done(_))
        ));
        assert!(matches!(
            p.on_reply(reply(x2, 0, ok()), t),
            Err(ProtocolError::OutOfOrder { expected: None, .. })
        ));
        assert_eq!(p.outstanding(), 0);
    }

    #[test]
    fn pings_and_notifications() {
        let mut p = Pipeline::new();
        let mut out = BytesMut::new();
        p.ping(&mut out);
        assert!(!p.is_idle());
        let frame = FrameDecoder::default().decode(&mut out).unwrap().unwrap();
        let h = RequestHeader::decode(frame).unwrap();
        assert_eq!((h.xid, h.op), (-2, 11));
        let t = Instant::now();
        assert_eq!(p.on_reply(reply(-2, 0, None), t).unwrap(), Reply::Pong);
        assert!(p.is_idle());
        assert_eq!(
            p.on_reply(reply(-1, 0, None), t).unwrap(),
            Reply::Notification
        );
    }

    #[test]
    fn a_truncated_body_is_an_error_not_a_panic() {
        let mut p = Pipeline::new();
        let mut out = BytesMut::new();
        let x = p.submit(OpClass::Get, &get("/a"), Instant::now(), &mut out);
        let mut bad = BytesMut::from(&reply(x, 0, None)[..]);
        bad.extend_from_slice(&[0, 0, 0, 9, 1]); // 9-byte buffer, 1 byte present
        assert!(matches!(
            p.on_reply(bad.freeze(), Instant::now()),
            Err(ProtocolError::Decode(_))
        ));
    }

    #[test]
    fn refused_sessions() {
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        assert!(matches!(
            connect_reply(resp.encode()),
            Err(ProtocolError::SessionRefused(0))
        ));
        let ok = ConnectResponse {
            time_out: 4000,
            session_id: 5,
            ..resp
        };
        assert_eq!(connect_reply(ok.encode()).unwrap().session_id, 5);
    }
}
