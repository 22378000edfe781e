//! Property tests: every jute record, [`Request`] and [`Response`] survives
//! encode → decode unchanged, consuming exactly the bytes it wrote.
//!
//! Generated vectors and strings are never null, so null-vs-empty (which
//! only the nullable `Option` fields preserve) does not arise except where a
//! field is `Option` and the strategy generates `None` on purpose.

use std::fmt::Debug;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use zab_wire::jute::*;

/// Encodes, decodes, and checks the value, the consumed length and the
/// re-encoding.
fn roundtrip<T: Jute + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = v.encode();
    let mut r = Reader::new(bytes.clone());
    let back = T::read(&mut r).map_err(|e| TestCaseError::fail(format!("{e}: {v:?}")))?;
    prop_assert_eq!(&back, v);
    prop_assert_eq!(r.remaining(), 0, "decode left bytes unread");
    prop_assert_eq!(back.encode(), bytes);
    Ok(())
}

// ------------------------------------------------------------ strategies

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9/._-]{0,16}",
        // Any Unicode, including non-BMP and control characters: the codec
        // must carry them even though path validation later rejects some.
        "\\PC{0,8}",
        Just(String::new()),
    ]
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn nullable_data() -> impl Strategy<Value = Option<Bytes>> {
    option::of(data())
}

fn id() -> impl Strategy<Value = Id> {
    (text(), text()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..4)
}

fn nullable_acls() -> impl Strategy<Value = Option<Vec<Acl>>> {
    option::of(acls())
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..5)
}

prop_compose! {
    fn stat()(
        a in any::<(i64, i64, i64, i64)>(),
        b in any::<(i32, i32, i32)>(),
        c in any::<(i64, i32, i32, i64)>(),
    ) -> Stat {
        Stat {
            czxid: a.0, mzxid: a.1, ctime: a.2, mtime: a.3,
            version: b.0, cversion: b.1, aversion: b.2,
            ephemeral_owner: c.0, data_length: c.1, num_children: c.2, pzxid: c.3,
        }
    }
}

prop_compose! {
    fn connect_request()(
        protocol_version in any::<i32>(), last_zxid_seen in any::<i64>(),
        time_out in any::<i32>(), session_id in any::<i64>(),
        passwd in data(), read_only in option::of(any::<bool>()),
    ) -> ConnectRequest {
        ConnectRequest { protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only }
    }
}

prop_compose! {
    fn connect_response()(
        protocol_version in any::<i32>(), time_out in any::<i32>(),
        session_id in any::<i64>(), passwd in data(), read_only in option::of(any::<bool>()),
    ) -> ConnectResponse {
        ConnectResponse { protocol_version, time_out, session_id, passwd, read_only }
    }
}

prop_compose! {
    fn create_request()(path in text(), data in nullable_data(), acl in nullable_acls(), flags in any::<i32>())
        -> CreateRequest { CreateRequest { path, data, acl, flags } }
}

prop_compose! {
    fn create_ttl_request()(
        path in text(), data in nullable_data(), acl in nullable_acls(),
        flags in any::<i32>(), ttl in any::<i64>(),
    ) -> CreateTtlRequest { CreateTtlRequest { path, data, acl, flags, ttl } }
}

fn path_watch() -> impl Strategy<Value = PathWatchRequest> {
    (text(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

fn path_req() -> impl Strategy<Value = PathRequest> {
    text().prop_map(|path| PathRequest { path })
}

fn delete_req() -> impl Strategy<Value = DeleteRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

fn set_data_req() -> impl Strategy<Value = SetDataRequest> {
    (text(), nullable_data(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

fn check_req() -> impl Strategy<Value = CheckVersionRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

fn set_acl_req() -> impl Strategy<Value = SetAclRequest> {
    (text(), nullable_acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclRequest {
        path,
        acl,
        version,
    })
}

fn reconfig_req() -> impl Strategy<Value = ReconfigRequest> {
    (text(), text(), text(), any::<i64>()).prop_map(|(j, l, n, c)| ReconfigRequest {
        joining_servers: j,
        leaving_servers: l,
        new_members: n,
        cur_config_id: c,
    })
}

fn watches_req() -> impl Strategy<Value = WatchesRequest> {
    (text(), any::<i32>()).prop_map(|(path, watcher_type)| WatchesRequest { path, watcher_type })
}

fn add_watch_req() -> impl Strategy<Value = AddWatchRequest> {
    (text(), any::<i32>()).prop_map(|(path, mode)| AddWatchRequest { path, mode })
}

fn auth_packet() -> impl Strategy<Value = AuthPacket> {
    (any::<i32>(), text(), data()).prop_map(|(auth_type, scheme, auth)| AuthPacket {
        auth_type,
        scheme,
        auth,
    })
}

fn set_watches() -> impl Strategy<Value = SetWatches> {
    (any::<i64>(), strings(), strings(), strings()).prop_map(|(z, d, e, c)| SetWatches {
        relative_zxid: z,
        data_watches: d,
        exist_watches: e,
        child_watches: c,
    })
}

fn set_watches2() -> impl Strategy<Value = SetWatches2> {
    (
        any::<i64>(),
        strings(),
        strings(),
        strings(),
        strings(),
        strings(),
    )
        .prop_map(|(z, d, e, c, p, pr)| SetWatches2 {
            relative_zxid: z,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
            persistent_watches: p,
            persistent_recursive_watches: pr,
        })
}

fn write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (
            prop_oneof![
                Just(op::CREATE),
                Just(op::CREATE2),
                Just(op::CREATE_CONTAINER)
            ],
            create_request()
        )
            .prop_map(|(op, req)| MultiOp::Create { op, req }),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_req().prop_map(MultiOp::Delete),
        set_data_req().prop_map(MultiOp::SetData),
        check_req().prop_map(MultiOp::Check),
    ]
}

fn read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        path_watch().prop_map(MultiOp::GetChildren),
        path_watch().prop_map(MultiOp::GetData),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            prop_oneof![
                Just(op::CREATE),
                Just(op::CREATE2),
                Just(op::CREATE_CONTAINER)
            ],
            create_request()
        )
            .prop_map(|(op, req)| Request::Create { op, req }),
        create_ttl_request().prop_map(Request::CreateTtl),
        delete_req().prop_map(Request::Delete),
        path_watch().prop_map(Request::Exists),
        path_watch().prop_map(Request::GetData),
        set_data_req().prop_map(Request::SetData),
        path_req().prop_map(Request::GetAcl),
        set_acl_req().prop_map(Request::SetAcl),
        path_watch().prop_map(Request::GetChildren),
        path_watch().prop_map(Request::GetChildren2),
        path_req().prop_map(Request::Sync),
        Just(Request::Ping),
        check_req().prop_map(Request::Check),
        vec(write_op(), 0..4).prop_map(Request::Multi),
        vec(read_op(), 0..4).prop_map(Request::MultiRead),
        reconfig_req().prop_map(Request::Reconfig),
        watches_req().prop_map(Request::CheckWatches),
        watches_req().prop_map(Request::RemoveWatches),
        path_req().prop_map(Request::DeleteContainer),
        auth_packet().prop_map(Request::Auth),
        set_watches().prop_map(Request::SetWatches),
        set_watches2().prop_map(Request::SetWatches2),
        nullable_data().prop_map(|token| Request::Sasl(SaslToken { token })),
        path_req().prop_map(Request::GetEphemerals),
        path_req().prop_map(Request::GetAllChildrenNumber),
        add_watch_req().prop_map(Request::AddWatch),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ]
}

fn get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (nullable_data(), stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

fn create2_response() -> impl Strategy<Value = Create2Response> {
    (text(), stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        text().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        create2_response().prop_map(MultiResult::Create2),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData(StatResponse { stat })),
        Just(MultiResult::Check),
        strings().prop_map(|items| MultiResult::GetChildren(StringListResponse { items })),
        get_data_response().prop_map(MultiResult::GetData),
        any::<i32>().prop_map(MultiResult::Error),
    ]
}

fn multi_response() -> impl Strategy<Value = MultiResponse> {
    vec(multi_result(), 0..5).prop_map(|results| MultiResponse { results })
}

fn client_info() -> impl Strategy<Value = ClientInfo> {
    (text(), text()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

/// A response and an opcode whose success body it is.
fn response() -> impl Strategy<Value = (i32, Response)> {
    prop_oneof![
        prop_oneof![
            Just(op::DELETE),
            Just(op::PING),
            Just(op::AUTH),
            Just(op::SET_WATCHES),
            Just(op::SET_WATCHES2),
            Just(op::CHECK_WATCHES),
            Just(op::REMOVE_WATCHES),
            Just(op::CLOSE_SESSION),
            Just(op::DELETE_CONTAINER),
        ]
        .prop_map(|op| (op, Response::Empty)),
        text().prop_map(|path| (op::CREATE, Response::Create(CreateResponse { path }))),
        (
            prop_oneof![
                Just(op::CREATE2),
                Just(op::CREATE_CONTAINER),
                Just(op::CREATE_TTL)
            ],
            create2_response()
        )
            .prop_map(|(op, r)| (op, Response::Create2(r))),
        (
            prop_oneof![Just(op::EXISTS), Just(op::SET_DATA), Just(op::SET_ACL)],
            stat()
        )
            .prop_map(|(op, stat)| (op, Response::Stat(StatResponse { stat }))),
        (
            prop_oneof![Just(op::GET_DATA), Just(op::RECONFIG)],
            get_data_response()
        )
            .prop_map(|(op, r)| (op, Response::GetData(r))),
        (acls(), stat())
            .prop_map(|(acl, stat)| (op::GET_ACL, Response::GetAcl(GetAclResponse { acl, stat }))),
        (
            prop_oneof![Just(op::GET_CHILDREN), Just(op::GET_EPHEMERALS)],
            strings()
        )
            .prop_map(|(op, items)| (op, Response::StringList(StringListResponse { items }))),
        (strings(), stat()).prop_map(|(children, stat)| (
            op::GET_CHILDREN2,
            Response::GetChildren2(GetChildren2Response { children, stat })
        )),
        text().prop_map(|path| (op::SYNC, Response::Sync(SyncResponse { path }))),
        (
            prop_oneof![Just(op::MULTI), Just(op::MULTI_READ)],
            multi_response()
        )
            .prop_map(|(op, m)| (op, Response::Multi(m))),
        any::<i32>().prop_map(|total_number| (
            op::GET_ALL_CHILDREN_NUMBER,
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number })
        )),
        vec(client_info(), 0..3).prop_map(|client_info| (
            op::WHO_AM_I,
            Response::WhoAmI(WhoAmIResponse { client_info })
        )),
        any::<i32>().prop_map(|err| (op::ADD_WATCH, Response::AddWatch(ErrorResponse { err }))),
        nullable_data().prop_map(|token| (op::SASL, Response::Sasl(SaslToken { token }))),
    ]
}

// ------------------------------------------------------------ properties

proptest! {
    #[test]
    fn data_records(id in id(), acl in acl(), stat in stat(), ci in client_info()) {
        roundtrip(&id)?;
        roundtrip(&acl)?;
        roundtrip(&stat)?;
        prop_assert_eq!(stat.encode().len(), 68, "Stat is 68 bytes on the wire");
        roundtrip(&ci)?;
    }

    #[test]
    fn headers(xid in any::<i32>(), op in any::<i32>(), zxid in any::<i64>(), err in any::<i32>(), done in any::<bool>()) {
        roundtrip(&RequestHeader { xid, op })?;
        roundtrip(&ReplyHeader { xid, zxid, err })?;
        roundtrip(&MultiHeader { op, done, err })?;
        prop_assert_eq!(RequestHeader { xid, op }.encode().len(), 8);
        prop_assert_eq!(ReplyHeader { xid, zxid, err }.encode().len(), 16);
    }

    #[test]
    fn handshake(req in connect_request(), resp in connect_response()) {
        roundtrip(&req)?;
        roundtrip(&resp)?;
        // Reference B: the readOnly byte is the only optional field.
        let base = 4 + 8 + 4 + 8 + 4 + req.passwd.len();
        prop_assert_eq!(req.encode().len(), base + req.read_only.map_or(0, |_| 1));
    }

    #[test]
    fn request_records(
        c in create_request(), t in create_ttl_request(), d in delete_req(),
        pw in path_watch(), sd in set_data_req(), cv in check_req(), p in path_req(),
        sa in set_acl_req(), rc in reconfig_req(), w in watches_req(), aw in add_watch_req(),
        ap in auth_packet(), sw in set_watches(), sw2 in set_watches2(), tok in nullable_data(),
    ) {
        roundtrip(&c)?;
        roundtrip(&t)?;
        roundtrip(&d)?;
        roundtrip(&pw)?;
        roundtrip(&sd)?;
        roundtrip(&cv)?;
        roundtrip(&p)?;
        roundtrip(&sa)?;
        roundtrip(&rc)?;
        roundtrip(&w)?;
        roundtrip(&aw)?;
        roundtrip(&ap)?;
        roundtrip(&sw)?;
        roundtrip(&sw2)?;
        roundtrip(&SaslToken { token: tok })?;
    }

    #[test]
    fn response_records(
        path in text(), c2 in create2_response(), stat in stat(), gd in get_data_response(),
        acl in acls(), items in strings(), n in any::<i32>(), m in multi_response(),
        who in vec(client_info(), 0..3), event in (any::<i32>(), any::<i32>(), text()),
    ) {
        roundtrip(&CreateResponse { path: path.clone() })?;
        roundtrip(&c2)?;
        roundtrip(&StatResponse { stat: stat.clone() })?;
        roundtrip(&gd)?;
        roundtrip(&GetAclResponse { acl, stat: stat.clone() })?;
        roundtrip(&StringListResponse { items: items.clone() })?;
        roundtrip(&GetChildren2Response { children: items, stat })?;
        roundtrip(&GetAllChildrenNumberResponse { total_number: n })?;
        roundtrip(&SyncResponse { path })?;
        roundtrip(&ErrorResponse { err: n })?;
        roundtrip(&WhoAmIResponse { client_info: who })?;
        roundtrip(&m)?;
        roundtrip(&WatcherEvent { event_type: event.0, state: event.1, path: event.2 })?;
    }

    #[test]
    fn requests_by_opcode(req in request(), xid in any::<i32>()) {
        let frame = req.encode_with_header(xid);
        let mut r = Reader::new(frame.clone());
        let header = RequestHeader::read(&mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&header, &RequestHeader { xid, op: req.op() });
        let back = Request::decode(header.op, r.rest())
            .map_err(|e| TestCaseError::fail(format!("{e}: {req:?}")))?;
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(back.encode_with_header(xid), frame);
    }

    #[test]
    fn responses_by_opcode((op, resp) in response(), xid in any::<i32>(), zxid in any::<i64>()) {
        let header = ReplyHeader { xid, zxid, err: 0 };
        let frame = resp.encode_reply(header.clone());
        let mut r = Reader::new(frame.clone());
        prop_assert_eq!(ReplyHeader::read(&mut r).map_err(|e| TestCaseError::fail(e.to_string()))?, header.clone());
        let back = Response::decode(op, r.rest())
            .map_err(|e| TestCaseError::fail(format!("{e}: op {op} {resp:?}")))?;
        prop_assert_eq!(&back, &resp);
    }

    #[test]
    fn error_replies_have_no_body((_, resp) in response(), xid in any::<i32>(), err in (-127i32..0)) {
        // Behaviour 18: whatever the body, an error reply is the header alone.
        let frame = resp.encode_reply(ReplyHeader { xid, zxid: 7, err });
        prop_assert_eq!(frame.len(), 16);
    }

    #[test]
    fn frames_split_back_into_their_payloads(payloads in vec(vec(any::<u8>(), 0..300), 0..6), split in any::<prop::sample::Index>()) {
        let mut wire = bytes::BytesMut::new();
        for p in &payloads {
            encode_frame(p, &mut wire);
        }
        // Deliver the stream in two arbitrary pieces.
        let wire = wire.freeze();
        let cut = if wire.is_empty() { 0 } else { split.index(wire.len() + 1) };
        let decoder = FrameDecoder::default();
        let mut buf = bytes::BytesMut::new();
        let mut got = Vec::new();
        for piece in [&wire[..cut], &wire[cut..]] {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                got.push(frame.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(buf.is_empty());
    }
}

#[test]
fn error_codes_and_create_modes_round_trip() {
    for code in -200..=200 {
        if let Some(e) = ErrorCode::from_code(code) {
            assert_eq!(e.code(), code);
        }
    }
    assert_eq!(
        ErrorCode::from_code(-9),
        None,
        "unassigned codes stay unknown"
    );
    for flags in -10..=10 {
        match CreateMode::from_flags(flags) {
            Some(m) => assert_eq!(m.flags(), flags),
            None => assert!(!(0..=6).contains(&flags)),
        }
    }
}
