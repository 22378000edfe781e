//! A server's reply frame as a client sees it: `ReplyHeader`, then a
//! notification, an error (header only) or a body decoded by the opcode of
//! the request it answers (taken from the first byte here), plus the first
//! frame (`ConnectResponse`) and raw `MultiResponse`s.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zab_wire::jute::{
    op, xid, ConnectResponse, Jute, MultiResponse, Reader, ReplyHeader, Response, WatcherEvent,
};

/// Opcodes with a distinct response shape.
const OPS: [i32; 16] = [
    op::CREATE,
    op::CREATE2,
    op::DELETE,
    op::EXISTS,
    op::GET_DATA,
    op::GET_ACL,
    op::GET_CHILDREN,
    op::GET_CHILDREN2,
    op::SYNC,
    op::MULTI,
    op::MULTI_READ,
    op::GET_ALL_CHILDREN_NUMBER,
    op::WHO_AM_I,
    op::ADD_WATCH,
    op::SASL,
    op::RECONFIG,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let payload = Bytes::copy_from_slice(rest);
    let _ = ConnectResponse::decode(payload.clone());
    if let Ok(m) = MultiResponse::decode(payload.clone()) {
        assert_eq!(MultiResponse::decode(m.encode()).as_ref(), Ok(&m));
    }

    let mut r = Reader::new(payload);
    let Ok(header) = ReplyHeader::read(&mut r) else {
        return;
    };
    if header.xid == xid::NOTIFICATION {
        let _ = WatcherEvent::read(&mut r);
    } else if header.err == 0 {
        let op = OPS[selector as usize % OPS.len()];
        if let Ok(resp) = Response::decode(op, r.rest()) {
            let mut again = Reader::new(resp.encode_reply(header.clone()));
            assert_eq!(ReplyHeader::read(&mut again).as_ref(), Ok(&header));
            assert_eq!(Response::decode(op, again.rest()).as_ref(), Ok(&resp));
        }
    }
});
