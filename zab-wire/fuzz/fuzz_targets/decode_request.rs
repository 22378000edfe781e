//! A client's request frame as the server sees it after framing:
//! `RequestHeader` then a body decoded by opcode, plus the first frame of a
//! connection (`ConnectRequest`). Decoding must never panic, and whatever
//! decodes must re-encode to something that decodes to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zab_wire::jute::{ConnectRequest, Jute, Reader, Request, RequestHeader};

fuzz_target!(|data: &[u8]| {
    let payload = Bytes::copy_from_slice(data);

    if let Ok(connect) = ConnectRequest::decode(payload.clone()) {
        assert_eq!(
            ConnectRequest::decode(connect.encode()).as_ref(),
            Ok(&connect)
        );
    }

    let mut r = Reader::new(payload);
    let Ok(header) = RequestHeader::read(&mut r) else {
        return;
    };
    if let Ok(req) = Request::decode(header.op, r.rest()) {
        // Strings are decoded lossily, so compare decoded values, not bytes.
        let again = req.encode_with_header(header.xid);
        let mut r2 = Reader::new(again);
        let h2 = RequestHeader::read(&mut r2).expect("our own header");
        assert_eq!(h2, header);
        assert_eq!(Request::decode(h2.op, r2.rest()).as_ref(), Ok(&req));
    }
});
