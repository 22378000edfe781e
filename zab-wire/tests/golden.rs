//! Golden frames captured from a real Apache ZooKeeper 3.8.0
//! (`tests/golden/*.txt`, written by `tests/golden/capture.py`).
//!
//! Every captured frame is split off the byte stream with [`FrameDecoder`],
//! decoded with zab-wire's types, re-encoded, and must come back byte for
//! byte. Each test then checks the protocol facts its steps exercise, so a
//! codec that decodes the wrong field or the wrong record shape fails here
//! even if it happens to round-trip.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use zab_wire::jute::*;

/// One decoded frame of a capture.
#[derive(Debug, Clone)]
enum Frame {
    ConnectRequest {
        payload_len: usize,
        req: ConnectRequest,
    },
    ConnectResponse {
        payload_len: usize,
        resp: ConnectResponse,
    },
    Request {
        xid: i32,
        req: Request,
    },
    Reply {
        header: ReplyHeader,
        payload_len: usize,
        /// The decoded body; `None` for error replies (header only).
        body: Option<Response>,
    },
    Notification {
        header: ReplyHeader,
        event: WatcherEvent,
    },
    Eof,
}

/// The frames of one `# step:` of a capture.
#[derive(Debug)]
struct Step {
    name: String,
    frames: Vec<Frame>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Unframes one captured frame, checking the framing round-trips too.
fn unframe(line: &str, context: &str) -> Bytes {
    let wire = hex(line);
    let mut buf = BytesMut::from(&wire[..]);
    let payload = FrameDecoder::default()
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{context}: {e}"))
        .unwrap_or_else(|| panic!("{context}: incomplete frame"));
    assert!(buf.is_empty(), "{context}: bytes after the frame");
    let mut again = BytesMut::new();
    encode_frame(&payload, &mut again);
    assert_eq!(again.as_ref(), &wire[..], "{context}: framing round trip");
    payload
}

/// Decodes and re-encodes every frame of a capture file.
fn replay(name: &str) -> Vec<Step> {
    let text = fixture(name);
    let mut steps: Vec<Step> = Vec::new();
    // xid -> opcode of requests awaiting their reply.
    let mut pending: HashMap<i32, i32> = HashMap::new();
    for (lineno, line) in text.lines().enumerate() {
        if let Some(step) = line.strip_prefix("# step: ") {
            steps.push(Step {
                name: step.to_owned(),
                frames: Vec::new(),
            });
            continue;
        }
        if line.starts_with('#') || line.starts_with("max-accepted") || line.is_empty() {
            continue;
        }
        let context = format!("{name}:{}", lineno + 1);
        let (kind, hexed) = line.split_once(' ').unwrap_or((line, ""));
        let frame = match kind {
            "eof" => Frame::Eof,
            "connect>" => {
                let payload = unframe(hexed, &context);
                let req = ConnectRequest::decode(payload.clone()).expect(&context);
                assert_eq!(req.encode(), payload, "{context}: re-encode");
                Frame::ConnectRequest {
                    payload_len: payload.len(),
                    req,
                }
            }
            "connect<" => {
                let payload = unframe(hexed, &context);
                let resp = ConnectResponse::decode(payload.clone()).expect(&context);
                assert_eq!(resp.encode(), payload, "{context}: re-encode");
                Frame::ConnectResponse {
                    payload_len: payload.len(),
                    resp,
                }
            }
            ">" => {
                let payload = unframe(hexed, &context);
                let mut r = Reader::new(payload.clone());
                let header = RequestHeader::read(&mut r).expect(&context);
                let req = Request::decode(header.op, r.rest())
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(req.op(), header.op, "{context}");
                assert_eq!(
                    req.encode_with_header(header.xid),
                    payload,
                    "{context}: re-encode"
                );
                pending.insert(header.xid, header.op);
                Frame::Request {
                    xid: header.xid,
                    req,
                }
            }
            "<" => {
                let payload = unframe(hexed, &context);
                let mut r = Reader::new(payload.clone());
                let header = ReplyHeader::read(&mut r).expect(&context);
                if header.xid == xid::NOTIFICATION {
                    let event = WatcherEvent::read(&mut r).expect(&context);
                    assert_eq!(r.remaining(), 0, "{context}: trailing bytes");
                    let mut w = Writer::new();
                    header.write(&mut w);
                    event.write(&mut w);
                    assert_eq!(w.into_bytes(), payload, "{context}: re-encode");
                    Frame::Notification { header, event }
                } else {
                    let op = pending
                        .remove(&header.xid)
                        .unwrap_or_else(|| panic!("{context}: reply to unknown xid"));
                    let body = if header.err == 0 {
                        let body = Response::decode(op, r.rest())
                            .unwrap_or_else(|e| panic!("{context}: {e}"));
                        Some(body)
                    } else {
                        // Behaviour 18: every error reply is the header alone.
                        assert_eq!(r.remaining(), 0, "{context}: error reply with a body");
                        None
                    };
                    let reencoded = body
                        .clone()
                        .unwrap_or(Response::Empty)
                        .encode_reply(header.clone());
                    assert_eq!(reencoded, payload, "{context}: re-encode");
                    Frame::Reply {
                        header,
                        payload_len: payload.len(),
                        body,
                    }
                }
            }
            other => panic!("{context}: unknown line kind {other:?}"),
        };
        steps
            .last_mut()
            .unwrap_or_else(|| panic!("{context}: frame before any step"))
            .frames
            .push(frame);
    }
    steps
}

fn step<'a>(steps: &'a [Step], prefix: &str) -> &'a [Frame] {
    &steps
        .iter()
        .find(|s| s.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no step starting {prefix:?}"))
        .frames
}

/// The single reply of a step (the last frame that is a reply).
fn reply(frames: &[Frame]) -> (&ReplyHeader, usize, Option<&Response>) {
    frames
        .iter()
        .rev()
        .find_map(|f| match f {
            Frame::Reply {
                header,
                payload_len,
                body,
            } => Some((header, *payload_len, body.as_ref())),
            _ => None,
        })
        .expect("a reply")
}

fn ok_body(frames: &[Frame]) -> &Response {
    let (h, _, body) = reply(frames);
    assert_eq!(h.err, 0);
    body.expect("success body")
}

fn notifications(frames: &[Frame]) -> Vec<(&ReplyHeader, &WatcherEvent)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Notification { header, event } => Some((header, event)),
            _ => None,
        })
        .collect()
}

fn multi_results(frames: &[Frame]) -> &[MultiResult] {
    match ok_body(frames) {
        Response::Multi(m) => &m.results,
        other => panic!("not a multi response: {other:?}"),
    }
}

#[test]
fn connect_with_read_only_byte() {
    let steps = replay("connect.txt");
    let frames = step(&steps, "connect, new session");
    let Frame::ConnectRequest { payload_len, req } = &frames[0] else {
        panic!("expected a ConnectRequest");
    };
    assert_eq!(*payload_len, 45, "reference B: 45-byte ConnectRequest");
    assert_eq!(req.session_id, 0);
    assert_eq!(req.read_only, Some(false));
    assert_eq!(req.passwd.len(), 16);
    let Frame::ConnectResponse { payload_len, resp } = &frames[1] else {
        panic!("expected a ConnectResponse");
    };
    assert_eq!(*payload_len, 37);
    assert_eq!(resp.read_only, Some(false));
    assert_eq!(resp.time_out, req.time_out);
    assert_eq!(resp.passwd.len(), 16);
    // Standalone session ids carry server id 1 in the top byte (reference B).
    assert_eq!(resp.session_id >> 56, 1);

    let frames = step(&steps, "closeSession");
    assert!(matches!(
        frames[0],
        Frame::Request {
            req: Request::CloseSession,
            ..
        }
    ));
    let (h, len, body) = reply(frames);
    assert_eq!((h.err, len), (0, 16));
    assert_eq!(body, Some(&Response::Empty));
    assert!(matches!(frames.last(), Some(Frame::Eof)));
}

#[test]
fn connect_without_read_only_byte_gets_the_old_response() {
    // Behaviour 39.
    let steps = replay("connect_old_client.txt");
    let frames = step(&steps, "connect without the readOnly byte");
    let Frame::ConnectRequest { payload_len, req } = &frames[0] else {
        panic!("expected a ConnectRequest");
    };
    assert_eq!((*payload_len, req.read_only), (44, None));
    let Frame::ConnectResponse { payload_len, resp } = &frames[1] else {
        panic!("expected a ConnectResponse");
    };
    assert_eq!((*payload_len, resp.read_only), (36, None));
    assert_ne!(resp.session_id, 0);
}

#[test]
fn resume_with_wrong_password_is_refused_with_timeout_zero() {
    // Behaviour 35 / reference B step 6.
    let steps = replay("resume_wrong_password.txt");
    let frames = step(&steps, "resume with a wrong password");
    let Frame::ConnectRequest { req, .. } = &frames[0] else {
        panic!("expected a ConnectRequest");
    };
    assert_ne!(req.session_id, 0);
    let Frame::ConnectResponse { resp, .. } = &frames[1] else {
        panic!("expected a ConnectResponse");
    };
    assert_eq!(resp.time_out, 0);
    assert_eq!(resp.session_id, 0);
    assert_eq!(resp.passwd.as_ref(), &[0u8; 16]);
    assert_eq!(resp.read_only, Some(false));
    assert!(matches!(frames[2], Frame::Eof));
}

#[test]
fn creates_of_every_kind() {
    let steps = replay("ops.txt");

    let frames = step(&steps, "create /g (op 1)");
    let Frame::Request {
        req: Request::Create { op, req },
        ..
    } = &frames[0]
    else {
        panic!("expected a create");
    };
    assert_eq!((*op, req.flags), (op::CREATE, 0));
    assert_eq!(req.acl.as_deref(), Some(&Acl::open_unsafe()[..]));
    assert_eq!(
        ok_body(frames),
        &Response::Create(CreateResponse { path: "/g".into() })
    );

    let frames = step(&steps, "create2 /g/c2");
    let Frame::Request {
        req: Request::Create { op, req },
        ..
    } = &frames[0]
    else {
        panic!("expected a create2");
    };
    assert_eq!((*op, req.data.as_ref()), (op::CREATE2, None));
    let (h, _, _) = reply(frames);
    let Response::Create2(r) = ok_body(frames) else {
        panic!("create2 answers Create2Response");
    };
    assert_eq!(r.path, "/g/c2");
    assert_eq!((r.stat.czxid, r.stat.mzxid), (h.zxid, h.zxid));
    assert_eq!(r.stat.data_length, 0);

    // Behaviour 1: %010d of the children ever created under the parent.
    let Response::Create(r) = ok_body(step(&steps, "create sequential")) else {
        panic!("op 1 answers CreateResponse");
    };
    let suffix = r.path.strip_prefix("/g/s-").expect("sequential name");
    assert_eq!(suffix.len(), 10);
    assert!(suffix.bytes().all(|b| b.is_ascii_digit()));

    for (name, flags, opcode) in [
        ("createContainer", 4, op::CREATE_CONTAINER),
        ("createTTL", 5, op::CREATE_TTL),
    ] {
        let frames = step(&steps, name);
        match &frames[0] {
            Frame::Request {
                req: Request::Create { op, req },
                ..
            } => assert_eq!((*op, req.flags), (opcode, flags)),
            Frame::Request {
                req: Request::CreateTtl(req),
                ..
            } => {
                assert_eq!(
                    (opcode, req.flags, req.ttl),
                    (op::CREATE_TTL, flags, 60_000)
                );
                assert_eq!(
                    CreateMode::from_flags(req.flags),
                    Some(CreateMode::PersistentWithTtl)
                );
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
        // Ops 19 and 21 always answer Create2Response; behaviour 8: no owner.
        let Response::Create2(r) = ok_body(frames) else {
            panic!("{name} answers Create2Response");
        };
        assert_eq!(r.stat.ephemeral_owner, 0, "{name}");
    }

    let (h, len, body) = reply(step(&steps, "create existing /g"));
    assert_eq!(ErrorCode::from_code(h.err), Some(ErrorCode::NodeExists));
    assert_eq!((len, body), (16, None));
}

#[test]
fn reads_and_simple_writes() {
    let steps = replay("ops.txt");

    // Behaviour 9: null data reads back as null with dataLength 0.
    let Response::GetData(r) = ok_body(step(&steps, "getData /g/c2")) else {
        panic!("getData answers GetDataResponse");
    };
    assert_eq!((r.data.as_ref(), r.stat.data_length), (None, 0));

    let frames = step(&steps, "setData /g");
    let Frame::Request {
        req: Request::SetData(req),
        ..
    } = &frames[0]
    else {
        panic!("expected setData");
    };
    let Response::Stat(r) = ok_body(frames) else {
        panic!("setData answers a Stat");
    };
    assert_eq!(
        r.stat.data_length as usize,
        req.data.as_ref().map_or(0, |d| d.len())
    );
    assert_eq!(r.stat.version, 1);

    let (h, len, body) = reply(step(&steps, "exists /missing"));
    assert_eq!((h.err, len, body), (ErrorCode::NoNode.code(), 16, None));
    assert!(matches!(
        ok_body(step(&steps, "exists /g")),
        Response::Stat(_)
    ));

    let Response::StringList(plain) = ok_body(step(&steps, "getChildren /g")) else {
        panic!("getChildren answers a string list");
    };
    let Response::GetChildren2(two) = ok_body(step(&steps, "getChildren2 /g")) else {
        panic!("getChildren2 answers GetChildren2Response");
    };
    assert_eq!(plain.items, two.children);
    assert_eq!(two.children.len(), two.stat.num_children as usize);

    let Response::GetAcl(r) = ok_body(step(&steps, "getACL /g")) else {
        panic!("getACL answers GetACLResponse");
    };
    assert_eq!(r.acl, Acl::open_unsafe());
    // Behaviour 5: setACL changes only aversion.
    let Response::Stat(after) = ok_body(step(&steps, "setACL /g")) else {
        panic!("setACL answers a Stat");
    };
    assert_eq!(after.stat.aversion, r.stat.aversion + 1);
    assert_eq!(after.stat.version, r.stat.version);

    let frames = step(&steps, "delete /g/c2");
    assert!(
        matches!(&frames[0], Frame::Request { req: Request::Delete(d), .. } if d.version == -1)
    );
    assert_eq!(ok_body(frames), &Response::Empty);

    let Response::Sync(r) = ok_body(step(&steps, "sync /g")) else {
        panic!("sync echoes its path");
    };
    assert_eq!(r.path, "/g");

    let Response::StringList(r) = ok_body(step(&steps, "getEphemerals")) else {
        panic!("getEphemerals answers a string list");
    };
    assert_eq!(r.items, vec!["/g/eph".to_owned()]);

    // /g holds s-…, box, ttl and eph by then (c2 was deleted).
    let Response::GetAllChildrenNumber(r) = ok_body(step(&steps, "getAllChildrenNumber")) else {
        panic!("getAllChildrenNumber answers an int");
    };
    assert_eq!(r.total_number, 4);
}

#[test]
fn multi_and_multi_read() {
    let steps = replay("ops.txt");

    let frames = step(&steps, "multi, all ops succeed");
    let Frame::Request {
        req: Request::Multi(ops),
        ..
    } = &frames[0]
    else {
        panic!("expected a multi");
    };
    let kinds: Vec<i32> = ops.iter().map(MultiOp::op).collect();
    assert_eq!(
        kinds,
        [op::CREATE, op::CREATE2, op::SET_DATA, op::CHECK, op::DELETE]
    );
    let results = multi_results(frames);
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], MultiResult::Create(r) if r.path == "/m1"));
    // Reference section 0: ZooKeeper <= 3.8 answers create2 inside a multi as
    // a plain create (op 1, path only); 3.9 answers Create2Response.
    assert!(matches!(&results[1], MultiResult::Create(r) if r.path == "/m2"));
    assert!(matches!(&results[2], MultiResult::SetData(r) if r.stat.version == 1));
    assert_eq!(results[3..], [MultiResult::Check, MultiResult::Delete]);

    // Behaviour 46: header err 0; before the failure 0, the failure its own
    // code, after it RUNTIMEINCONSISTENCY.
    let frames = step(&steps, "multi that fails");
    assert_eq!(reply(frames).0.err, 0);
    assert_eq!(
        multi_results(frames),
        [
            MultiResult::Error(0),
            MultiResult::Error(ErrorCode::NodeExists.code()),
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
        ]
    );

    let frames = step(&steps, "empty multi");
    assert!(
        matches!(&frames[0], Frame::Request { req: Request::Multi(ops), .. } if ops.is_empty())
    );
    assert!(multi_results(frames).is_empty());

    let frames = step(&steps, "multiRead");
    let Frame::Request {
        req: Request::MultiRead(ops),
        ..
    } = &frames[0]
    else {
        panic!("expected a multiRead");
    };
    assert!(ops.iter().all(MultiOp::is_read));
    let results = multi_results(frames);
    assert!(
        matches!(&results[0], MultiResult::GetData(r) if r.data.as_deref() == Some(&b"world"[..]))
    );
    assert!(matches!(&results[1], MultiResult::GetChildren(r) if !r.items.is_empty()));
    assert_eq!(results[2], MultiResult::Error(ErrorCode::NoNode.code()));
}

#[test]
fn auth_who_am_i_and_ping() {
    let steps = replay("ops.txt");

    let Response::WhoAmI(before) = ok_body(step(&steps, "whoAmI before auth")) else {
        panic!("whoAmI answers WhoAmIResponse");
    };
    assert_eq!(
        before.client_info,
        [ClientInfo {
            auth_scheme: "ip".into(),
            user: "127.0.0.1".into()
        }]
    );

    let frames = step(&steps, "auth digest");
    let Frame::Request {
        xid: x,
        req: Request::Auth(a),
    } = &frames[0]
    else {
        panic!("expected an auth packet");
    };
    assert_eq!(
        (*x, a.auth_type, a.scheme.as_str()),
        (xid::AUTH, 0, "digest")
    );
    let (h, len, body) = reply(frames);
    // Reference C: auth replies carry zxid 0.
    assert_eq!((h.xid, h.zxid, h.err, len), (xid::AUTH, 0, 0, 16));
    assert_eq!(body, Some(&Response::Empty));

    let Response::WhoAmI(after) = ok_body(step(&steps, "whoAmI after auth")) else {
        panic!("whoAmI answers WhoAmIResponse");
    };
    assert!(after.client_info.contains(&ClientInfo {
        auth_scheme: "digest".into(),
        user: "user".into()
    }));

    let frames = step(&steps, "ping");
    assert!(matches!(
        frames[0],
        Frame::Request {
            xid: xid::PING,
            req: Request::Ping
        }
    ));
    let (h, len, body) = reply(frames);
    assert_eq!((h.xid, h.err, len), (xid::PING, 0, 16));
    assert!(h.zxid > 0, "ping replies carry the last processed zxid");
    assert_eq!(body, Some(&Response::Empty));
}

#[test]
fn watches() {
    let steps = replay("ops.txt");

    let frames = step(&steps, "addWatch");
    assert!(matches!(
        &frames[0],
        Frame::Request { req: Request::AddWatch(a), .. } if a.mode == add_watch_mode::PERSISTENT
    ));
    let (_, len, body) = reply(frames);
    assert_eq!(len, 16 + 4, "addWatch answers a 4-byte ErrorResponse");
    assert_eq!(body, Some(&Response::AddWatch(ErrorResponse { err: 0 })));

    let frames = step(&steps, "checkWatches /g any");
    assert!(matches!(
        &frames[0],
        Frame::Request { req: Request::CheckWatches(w), .. } if w.watcher_type == watcher_type::ANY
    ));
    assert_eq!(ok_body(frames), &Response::Empty);
    assert!(matches!(
        &step(&steps, "removeWatches")[0],
        Frame::Request {
            req: Request::RemoveWatches(_),
            ..
        }
    ));
    let (h, len, _) = reply(step(&steps, "checkWatches on a path with no watch"));
    assert_eq!((h.err, len), (ErrorCode::NoWatcher.code(), 16));

    // Behaviour 28: a data watch older than the node's mzxid fires at once,
    // before the SetWatches reply.
    let frames = step(&steps, "setWatches (op 101");
    let Frame::Request {
        xid: x,
        req: Request::SetWatches(sw),
    } = &frames[0]
    else {
        panic!("expected SetWatches");
    };
    assert_eq!(
        (*x, sw.data_watches.as_slice()),
        (xid::SET_WATCHES, &["/g".to_owned()][..])
    );
    let events = notifications(frames);
    assert_eq!(events.len(), 1);
    let (h, e) = events[0];
    // Reference section 0: 3.8 sends notification zxid -1.
    assert_eq!((h.xid, h.zxid, h.err), (xid::NOTIFICATION, -1, 0));
    assert_eq!(
        (e.event_type, e.state, e.path.as_str()),
        (event_type::NODE_DATA_CHANGED, STATE_SYNC_CONNECTED, "/g")
    );
    assert!(
        matches!(frames.last(), Some(Frame::Reply { header, .. }) if header.xid == xid::SET_WATCHES)
    );

    let frames = step(&steps, "setWatches2");
    let Frame::Request {
        req: Request::SetWatches2(sw),
        ..
    } = &frames[0]
    else {
        panic!("expected SetWatches2");
    };
    assert_eq!(sw.persistent_recursive_watches, ["/m1".to_owned()]);
    assert_eq!(ok_body(frames), &Response::Empty);

    // Behaviour 23: the event precedes the reply of the write that caused it.
    for (name, ty) in [
        ("getData /g with a watch", event_type::NODE_DATA_CHANGED),
        (
            "getChildren /g with a watch",
            event_type::NODE_CHILDREN_CHANGED,
        ),
    ] {
        let frames = step(&steps, name);
        let write_xid = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Request { xid, .. } => Some(*xid),
                _ => None,
            })
            .last()
            .expect("the write");
        let event_at = frames
            .iter()
            .position(|f| matches!(f, Frame::Notification { event, .. } if event.event_type == ty && event.path == "/g"))
            .unwrap_or_else(|| panic!("{name}: no event"));
        let reply_at = frames
            .iter()
            .position(|f| matches!(f, Frame::Reply { header, .. } if header.xid == write_xid))
            .unwrap_or_else(|| panic!("{name}: no reply"));
        assert!(event_at < reply_at, "{name}");
    }

    let frames = step(&steps, "closeSession");
    assert_eq!(ok_body(frames), &Response::Empty);
    assert!(matches!(frames.last(), Some(Frame::Eof)));
}

#[test]
fn every_request_gets_exactly_one_reply_in_order() {
    // Reference C: replies go out strictly in request order, notifications
    // may be interleaved. Also guards against a capture that lost frames.
    for name in ["connect.txt", "connect_old_client.txt", "ops.txt"] {
        let steps = replay(name);
        let frames: Vec<&Frame> = steps.iter().flat_map(|s| &s.frames).collect();
        let requests: Vec<i32> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Request { xid, .. } => Some(*xid),
                _ => None,
            })
            .collect();
        let replies: Vec<i32> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Reply { header, .. } => Some(header.xid),
                _ => None,
            })
            .collect();
        assert!(!requests.is_empty(), "{name}");
        assert_eq!(requests, replies, "{name}");
        for s in &steps {
            assert!(
                matches!(
                    s.frames.first(),
                    Some(Frame::Request { .. } | Frame::ConnectRequest { .. })
                ),
                "{name}: step {:?} does not start with a client frame",
                s.name
            );
        }
    }
}

#[test]
fn max_buffer_matches_zookeeper() {
    // Behaviour 15: ZooKeeper accepted a frame payload of exactly
    // jute.maxbuffer bytes and closed the connection on one byte more.
    let text = fixture("max_buffer.txt");
    let accepted: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("max-accepted "))
        .expect("max-accepted line")
        .parse()
        .expect("a number");
    assert!(text.contains(&format!(
        "frame payload {}: connection closed",
        accepted + 1
    )));
    assert_eq!(accepted, DEFAULT_MAX_BUFFER);

    let d = FrameDecoder::default();
    let mut at = BytesMut::new();
    encode_frame(&vec![0u8; accepted], &mut at);
    assert_eq!(
        d.decode(&mut at).expect("accepted").map(|p| p.len()),
        Some(accepted)
    );
    let mut over = BytesMut::from(&((accepted + 1) as i32).to_be_bytes()[..]);
    assert!(matches!(
        d.decode(&mut over),
        Err(FrameError::TooLarge { .. })
    ));
}
