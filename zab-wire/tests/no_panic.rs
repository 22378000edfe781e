//! Property tests: no decoder panics, whatever bytes a client or peer sends
//! (architecture invariant: bad input gets an error, never a panic).
//!
//! Two kinds of input: arbitrary bytes, and valid encodings with a few bytes
//! flipped or cut short, which reach much deeper into the record decoders
//! than random noise does. `fuzz/` runs the same entry points under
//! libFuzzer for longer.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use zab_wire::jute::*;
use zab_wire::proto;

/// Every opcode a decoder knows, plus a few it does not.
const OPS: &[i32] = &[
    op::NOTIFICATION,
    op::CREATE,
    op::DELETE,
    op::EXISTS,
    op::GET_DATA,
    op::SET_DATA,
    op::GET_ACL,
    op::SET_ACL,
    op::GET_CHILDREN,
    op::SYNC,
    op::PING,
    op::GET_CHILDREN2,
    op::CHECK,
    op::MULTI,
    op::CREATE2,
    op::RECONFIG,
    op::CHECK_WATCHES,
    op::REMOVE_WATCHES,
    op::CREATE_CONTAINER,
    op::DELETE_CONTAINER,
    op::CREATE_TTL,
    op::MULTI_READ,
    op::AUTH,
    op::SET_WATCHES,
    op::SASL,
    op::GET_EPHEMERALS,
    op::GET_ALL_CHILDREN_NUMBER,
    op::SET_WATCHES2,
    op::ADD_WATCH,
    op::WHO_AM_I,
    op::CREATE_SESSION,
    op::CLOSE_SESSION,
    op::ERROR,
    10,
    50,
    i32::MIN,
    i32::MAX,
];

fn opcode() -> impl Strategy<Value = i32> {
    prop_oneof![4 => prop::sample::select(OPS), 1 => any::<i32>()]
}

/// Runs every decoder on `bytes`; only panics matter, results are ignored.
fn decode_everything(op: i32, bytes: &[u8]) {
    let b = Bytes::copy_from_slice(bytes);
    let _ = Request::decode(op, b.clone());
    let _ = Response::decode(op, b.clone());
    let _ = ConnectRequest::decode(b.clone());
    let _ = ConnectResponse::decode(b.clone());
    let _ = MultiResponse::decode(b.clone());
    let _ = RequestHeader::decode(b.clone());
    let _ = ReplyHeader::decode(b.clone());
    let _ = WatcherEvent::decode(b.clone());
    for max in [0, 16, DEFAULT_MAX_BUFFER] {
        let mut buf = BytesMut::from(bytes);
        let decoder = FrameDecoder::new(max);
        // Drain as a connection would, until an error or no whole frame.
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            assert!(frame.len() <= max);
        }
    }
    if let Some(first4) = bytes.first_chunk::<4>() {
        let _ = four_letter_word(*first4);
    }
    let _ = proto::Txn::decode(b.clone());
    let _ = proto::QuorumPacket::decode(b.clone());
    let _ = proto::QuorumBatch::decode(b.clone());
    let _ = proto::LearnerInfo::decode(b);
}

/// Some valid encodings to mutate.
fn seed(which: u8) -> (i32, Bytes) {
    let create = CreateRequest {
        path: "/a/b".into(),
        data: Some(Bytes::from_static(b"data")),
        acl: Some(Acl::open_unsafe()),
        flags: 2,
    };
    let req = match which % 6 {
        0 => Request::Create {
            op: op::CREATE2,
            req: create.clone(),
        },
        1 => Request::Multi(vec![
            MultiOp::Create {
                op: op::CREATE,
                req: create,
            },
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 3,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/a/b".into(),
                version: -1,
            }),
        ]),
        2 => Request::MultiRead(vec![
            MultiOp::GetData(PathWatchRequest {
                path: "/x".into(),
                watch: false,
            }),
            MultiOp::GetChildren(PathWatchRequest {
                path: "/".into(),
                watch: true,
            }),
        ]),
        3 => Request::SetWatches2(SetWatches2 {
            relative_zxid: 9,
            data_watches: vec!["/a".into(), "/b".into()],
            exist_watches: vec!["/c".into()],
            child_watches: vec![],
            persistent_watches: vec!["/d".into()],
            persistent_recursive_watches: vec!["/e".into()],
        }),
        4 => Request::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: Some(vec![Acl {
                perms: 1,
                id: Id::new("digest", "u:h"),
            }]),
            version: 0,
        }),
        _ => {
            let multi = MultiResponse {
                results: vec![
                    MultiResult::Create2(Create2Response {
                        path: "/a".into(),
                        stat: Stat::default(),
                    }),
                    MultiResult::GetData(GetDataResponse {
                        data: None,
                        stat: Stat::default(),
                    }),
                    MultiResult::Error(-101),
                ],
            };
            return (op::MULTI, multi.encode());
        }
    };
    let mut w = Writer::new();
    req.write_body(&mut w);
    (req.op(), w.into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(op in opcode(), bytes in vec(any::<u8>(), 0..256)) {
        decode_everything(op, &bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        which in any::<u8>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let (op, good) = seed(which);
        let mut bytes = good.to_vec();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_everything(op, &bytes);
        // Also as a whole frame, length prefix included.
        let mut framed = BytesMut::new();
        encode_frame(&bytes, &mut framed);
        decode_everything(op, &framed);
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations(op in opcode(), len in any::<i32>(), tail in vec(any::<u8>(), 0..16)) {
        // A length or count field that lies about what follows, in the first
        // field position of every record.
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tail);
        decode_everything(op, &bytes);
        if len < -1 || len as i64 > tail.len() as i64 {
            prop_assert!(Option::<Bytes>::decode(Bytes::from(bytes.clone())).is_err());
            prop_assert!(Option::<Vec<i32>>::decode(Bytes::from(bytes)).is_err());
        }
    }
}

#[test]
fn truncations_of_valid_encodings_are_errors() {
    // A cut anywhere before the last byte must be reported, never read as a
    // shorter valid value (records are not self-delimiting, reference A, but
    // every seed here ends in a fixed-width field or a terminator).
    for which in 0..6 {
        let (op, good) = seed(which);
        for cut in 0..good.len() {
            let part = good.slice(..cut);
            let decoded = if which == 5 {
                MultiResponse::decode(part).map(|_| ())
            } else {
                Request::decode(op, part).map(|_| ())
            };
            assert!(decoded.is_err(), "seed {which} cut at {cut} decoded");
        }
    }
}
